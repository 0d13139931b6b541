import type { Duration, Effect, Option, Redacted } from "effect"
import type { ProviderError } from "../domain/errors.js"
import type { AccountInfo, AuthorizationRequest, PlatformDefinition, PlatformSettings, TokenGrant } from "../platforms/definition.js"
import type { BreakerHealth, BreakerState } from "../resilience/CircuitBreaker.js"

/**
 * A platform as the rest of the service sees it: its OAuth operations with the HTTP
 * client provided, each request behind the platform's circuit breaker, retried where that
 * is safe, failing only with typed errors.
 */
export interface IntegrationProvider {
  readonly key: string
  readonly displayName: string
  readonly definition: PlatformDefinition
  readonly settings: PlatformSettings
  /**
   * The longest one operation can take, retries included (RETRY_BUDGET plus the last
   * attempt's timeout): a caller holding a lease checks it has this much left first.
   */
  readonly budget: Duration.Duration
  readonly authorizationUrl: (request: AuthorizationRequest) => Effect.Effect<string, ProviderError>
  /** Never retried: an authorisation code is single use. */
  readonly exchangeCode: (input: {
    readonly code: string
    readonly codeVerifier: Option.Option<Redacted.Redacted<string>>
    readonly redirectUri: string
  }) => Effect.Effect<TokenGrant, ProviderError>
  readonly refresh: (refreshToken: Redacted.Redacted<string>) => Effect.Effect<TokenGrant, ProviderError>
  readonly revoke: (token: Redacted.Redacted<string>) => Effect.Effect<void, ProviderError>
  readonly account: (grant: TokenGrant) => Effect.Effect<AccountInfo, ProviderError>
  readonly validate: (accessToken: Redacted.Redacted<string>) => Effect.Effect<"valid" | "unsupported", ProviderError>
  readonly health: Effect.Effect<BreakerHealth>
  readonly breakerState: Effect.Effect<BreakerState>
}
