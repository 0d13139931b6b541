import { Cause, Effect, Exit, Metric, Option } from "effect"
import type { ProviderError } from "../domain/errors.js"
import { RequestGuard } from "../oauth/http.js"
import type { OAuthClient } from "../oauth/OAuthClient.js"
import { taggedBy } from "../observability/labels.js"
import { providerCalls, tokenEndpointLatency } from "../observability/metrics.js"
import type { ResiliencePolicy } from "../resilience/policy.js"
import type { IntegrationProvider } from "./IntegrationProvider.js"

/**
 * A platform's OAuth client under its resilience policy: each HTTP request goes through the
 * platform's circuit breaker (work done without the network does not), transient failures
 * are retried within the budget (never a code exchange), and each operation gets a log line
 * and metrics. Callers see typed errors only.
 */
export const makeResilientProvider = (client: OAuthClient, policy: ResiliencePolicy): IntegrationProvider => {
  const platform = client.definition.key
  const callsTagged = taggedBy(providerCalls)
  const latencyTagged = taggedBy(tokenEndpointLatency)
  const calls = (operation: string, outcome: string) => Metric.increment(callsTagged({ platform, operation, outcome }))

  /** Times a request that was sent, whatever it answered; an interrupted one never finished. */
  const timed = (operation: string) => {
    const latency = latencyTagged({ platform, operation })
    return (exit: Exit.Exit<unknown, unknown>, elapsedMs: number) =>
      Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause) ? Effect.void : Metric.update(latency, elapsedMs / 1000)
  }

  /** Each operation counted by outcome; a failure logged (debug while calls fail fast: warning about each would flood the log). */
  const observe = (operation: string) => <A>(effect: Effect.Effect<A, ProviderError>): Effect.Effect<A, ProviderError> =>
    Effect.tapBoth(effect, {
      onFailure: (error) =>
        calls(operation, error._tag).pipe(
          Effect.zipRight((error._tag === "CircuitOpen" ? Effect.logDebug : Effect.logWarning)(`${operation} failed`).pipe(
            Effect.annotateLogs({ platform, operation, error: error._tag })
          ))
        ),
      onSuccess: () => calls(operation, "ok")
    })

  /** The outcome attribute of a span: ok, or the error's tag. */
  const outcomeOf = (exit: Exit.Exit<unknown, ProviderError>) =>
    Exit.isSuccess(exit) ? "ok" : Option.match(Cause.failureOption(exit.cause), { onNone: () => "defect", onSome: (e) => e._tag })

  /**
   * The engine's requests are the policy's: each one observed by the breaker, within the
   * operation's deadline. Traced as a span per operation (`platform.<operation>`, with the
   * attempts it took) over a span per attempt (`platform.<operation>.attempt`); neither
   * carries a URL, a token or a code.
   */
  const run = (operation: string, options: { readonly retry: boolean; readonly tokenEndpoint: boolean }) =>
  <A>(effect: Effect.Effect<A, ProviderError>): Effect.Effect<A, ProviderError> =>
    Effect.suspend(() => {
      let attempts = 0
      const attempt = Effect.suspend(() => {
        const n = ++attempts
        return effect.pipe(
          Effect.onExit((exit) => Effect.annotateCurrentSpan("outcome", outcomeOf(exit))),
          Effect.withSpan(`platform.${operation}.attempt`, { kind: "client", captureStackTrace: false, attributes: { platform, operation, attempt: n } })
        )
      })
      return policy.operation(
        (deadline) =>
          Effect.provideService(attempt, RequestGuard, {
            observe: (request) => policy.request(request, deadline, options.tokenEndpoint ? timed(operation) : undefined)
          }),
        options
      ).pipe(
        observe(operation),
        Effect.onExit((exit) => Effect.annotateCurrentSpan({ outcome: outcomeOf(exit), attempts })),
        Effect.withSpan(`platform.${operation}`, { captureStackTrace: false, attributes: { platform, operation } })
      )
    })

  const retried = { retry: true, tokenEndpoint: false }

  return {
    key: platform,
    displayName: client.definition.displayName,
    definition: client.definition,
    settings: client.settings,
    budget: policy.budget,
    authorizationUrl: (request) => run("authorize", retried)(client.authorizationUrl(request)),
    // Never retried: an authorisation code is single use.
    exchangeCode: (input) => run("exchange_code", { retry: false, tokenEndpoint: true })(client.exchangeCode(input)),
    refresh: (refreshToken) => run("refresh", { retry: true, tokenEndpoint: true })(client.refresh(refreshToken)),
    revoke: (token) => run("revoke", retried)(client.revoke(token)),
    account: (grant) => run("account", retried)(client.account(grant)),
    validate: (accessToken) => run("validate", retried)(client.validate(accessToken)),
    health: policy.breaker.health,
    breakerState: policy.breaker.state
  }
}
