import * as HttpClient from "@effect/platform/HttpClient"
import { Duration, Effect, Metric } from "effect"
import type { ProviderError } from "../domain/errors.js"
import type { OAuthClient } from "../oauth/OAuthClient.js"
import { withTags } from "../observability/labels.js"
import { providerCalls, tokenEndpointLatency } from "../observability/metrics.js"
import * as CircuitBreaker from "../resilience/CircuitBreaker.js"
import { once, type RetrySettings, withRetry } from "../resilience/retry.js"
import type { IntegrationProvider } from "./IntegrationProvider.js"

export interface ResilienceSettings {
  readonly retry: RetrySettings
  readonly breaker: CircuitBreaker.BreakerSettings
}

/**
 * Wraps a platform's OAuth client: one circuit breaker per platform, retries of transient
 * failures (never of a code exchange), a log line and metrics per operation. Callers see
 * typed errors only.
 */
export const makeResilientProvider = (client: OAuthClient, resilience: ResilienceSettings) =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const platform = client.definition.key
    const breaker = yield* CircuitBreaker.make(platform, resilience.breaker)

    const calls = (operation: string, outcome: string) => Metric.increment(withTags(providerCalls, { platform, operation, outcome }))
    const latency = (operation: string) =>
      Metric.trackDurationWith(withTags(tokenEndpointLatency, { platform, operation }), (d) => Duration.toMillis(d) / 1000)

    const observe = (operation: string, timed: boolean) => <A>(effect: Effect.Effect<A, ProviderError>): Effect.Effect<A, ProviderError> =>
      effect.pipe(
        timed ? latency(operation) : (e) => e,
        Effect.tapBoth({
          onFailure: (error) =>
            calls(operation, error._tag).pipe(
              Effect.zipRight(Effect.logWarning(`${operation} failed`).pipe(Effect.annotateLogs("error", error._tag)))
            ),
          onSuccess: () => calls(operation, "ok").pipe(Effect.zipRight(Effect.logDebug(`${operation} succeeded`)))
        }),
        Effect.annotateLogs({ platform, operation })
      )

    const provided = <A, E>(effect: Effect.Effect<A, E, HttpClient.HttpClient>) =>
      Effect.provideService(effect, HttpClient.HttpClient, http)
    const retried = (operation: string, timed = false) => <A>(effect: Effect.Effect<A, ProviderError, HttpClient.HttpClient>) =>
      observe(operation, timed)(withRetry(provided(effect), resilience.retry, breaker))

    const provider: IntegrationProvider = {
      key: platform,
      displayName: client.definition.displayName,
      definition: client.definition,
      settings: client.settings,
      authorizationUrl: (request) => retried("authorize")(client.authorizationUrl(request)),
      exchangeCode: (input) => observe("exchange_code", true)(once(provided(client.exchangeCode(input)), breaker)),
      refresh: (refreshToken) => retried("refresh", true)(client.refresh(refreshToken)),
      revoke: (token) => retried("revoke")(client.revoke(token)),
      account: (grant) => retried("account")(client.account(grant)),
      validate: (accessToken) => retried("validate")(client.validate(accessToken)),
      health: breaker.health,
      breakerState: breaker.state
    }
    return provider
  })
