import * as HttpClient from "@effect/platform/HttpClient"
import { Cause, Clock, Context, Duration, Effect, Exit, Metric } from "effect"
import { type ProviderError, ProviderUnavailable } from "../domain/errors.js"
import { RequestGuard } from "../oauth/http.js"
import type { OAuthClient } from "../oauth/OAuthClient.js"
import { taggedBy } from "../observability/labels.js"
import { providerCalls, tokenEndpointLatency } from "../observability/metrics.js"
import type * as CircuitBreaker from "../resilience/CircuitBreaker.js"
import { type RetrySettings, withRetry } from "../resilience/retry.js"
import type { IntegrationProvider } from "./IntegrationProvider.js"
import { operationBudget } from "./resilienceSettings.js"

export interface ResilienceSettings {
  readonly retry: RetrySettings
  readonly breaker: CircuitBreaker.BreakerSettings
}

/**
 * Wraps a platform's OAuth client: each HTTP request goes through the platform's circuit
 * breaker (work done without the network does not), transient failures are retried within
 * the budget (never a code exchange), and each operation gets a log line and metrics.
 * Callers see typed errors only.
 */
export const makeResilientProvider = (client: OAuthClient, resilience: ResilienceSettings, breaker: CircuitBreaker.CircuitBreaker) =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const platform = client.definition.key
    const budget = operationBudget(resilience, client.settings.timeout)
    const budgetMs = Duration.toMillis(budget)

    const callsTagged = taggedBy(providerCalls)
    const latencyTagged = taggedBy(tokenEndpointLatency)
    const calls = (operation: string, outcome: string) => Metric.increment(callsTagged({ platform, operation, outcome }))

    /** Times a request that was sent, whatever it answered; an interrupted one never finished. */
    const timed = (operation: string) => {
      const latency = latencyTagged({ platform, operation })
      return (exit: Exit.Exit<unknown, unknown>, elapsedMs: number) =>
        Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause) ? Effect.void : Metric.update(latency, elapsedMs / 1000)
    }

    const requestTimeout = Duration.toMillis(client.settings.timeout)
    const guard = (operation: string, tokenEndpoint: boolean, deadline: number): Context.Tag.Service<RequestGuard> => ({
      observe: (request) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const protectedRequest = breaker.protect(request, tokenEndpoint ? timed(operation) : undefined)
          // However many requests an attempt makes, none runs past the operation's budget; a
          // request that would end before the budget does is bounded by its own timeout alone.
          return deadline - now >= requestTimeout
            ? protectedRequest
            : Effect.timeoutFail(protectedRequest, { duration: Math.max(0, deadline - now), onTimeout: () => new ProviderUnavailable({ platform, reason: "timeout" }) })
        })
    })

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

    const run = (operation: string, options: { readonly retry: boolean; readonly tokenEndpoint: boolean }) =>
    <A>(effect: Effect.Effect<A, ProviderError, HttpClient.HttpClient>): Effect.Effect<A, ProviderError> =>
      Effect.flatMap(Clock.currentTimeMillis, (start) => {
        // One context for the operation: the client and the guard that holds its deadline.
        const attempt = Effect.provide(effect, Context.make(HttpClient.HttpClient, http).pipe(
          Context.add(RequestGuard, guard(operation, options.tokenEndpoint, start + budgetMs))
        ))
        return options.retry ? withRetry(attempt, resilience.retry, breaker, start) : attempt
      }).pipe(observe(operation))

    const retried = { retry: true, tokenEndpoint: false }

    const provider: IntegrationProvider = {
      key: platform,
      displayName: client.definition.displayName,
      definition: client.definition,
      settings: client.settings,
      budget,
      authorizationUrl: (request) => run("authorize", retried)(client.authorizationUrl(request)),
      // Never retried: an authorisation code is single use.
      exchangeCode: (input) => run("exchange_code", { retry: false, tokenEndpoint: true })(client.exchangeCode(input)),
      refresh: (refreshToken) => run("refresh", { retry: true, tokenEndpoint: true })(client.refresh(refreshToken)),
      revoke: (token) => run("revoke", retried)(client.revoke(token)),
      account: (grant) => run("account", retried)(client.account(grant)),
      validate: (accessToken) => run("validate", retried)(client.validate(accessToken)),
      health: breaker.health,
      breakerState: breaker.state
    }
    return provider
  })
