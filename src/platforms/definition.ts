import type { Duration, Effect, Option, Redacted } from "effect"
import type { ProviderError } from "../domain/errors.js"

/** What a token endpoint answered, normalised; `fields` holds its other, non-secret fields. */
export interface TokenGrant {
  readonly accessToken: Redacted.Redacted<string>
  readonly refreshToken: Option.Option<Redacted.Redacted<string>>
  /** Seconds; None when the platform did not say (treated as not expiring, validated periodically). */
  readonly expiresIn: Option.Option<number>
  readonly scope: Option.Option<string>
  readonly tokenType: Option.Option<string>
  readonly fields: Readonly<Record<string, unknown>>
}

/** The account a connection belongs to, and what to keep about it (never a token). */
export interface AccountInfo {
  readonly accountId: string
  readonly providerData: Readonly<Record<string, unknown>>
}

export interface AuthorizationRequest {
  readonly state: Redacted.Redacted<string>
  readonly codeChallenge: Option.Option<string>
  readonly redirectUri: string
}

/** A platform's settings, read from `<KEY>_*` variables and checked. */
export interface PlatformSettings {
  readonly clientId: string
  readonly clientSecret: Option.Option<Redacted.Redacted<string>>
  readonly redirectUri: string
  /** Every endpoint URL, defaults overridden by `<KEY>_<NAME>_URL`. */
  readonly urls: Readonly<Record<string, string>>
  /** The endpoint names whose URL came from a variable. */
  readonly overridden: ReadonlySet<string>
  readonly scopes: ReadonlyArray<string>
  readonly tokenBody: "form" | "json"
  /** Send a PKCE S256 challenge: by the definition's `pkce` support unless `<KEY>_PKCE` says otherwise. */
  readonly pkce: boolean
  readonly timeout: Duration.Duration
}

/** A request a platform's own function sends (a revocation that is not RFC 7009, say). */
export interface PlatformRequest {
  readonly method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE"
  readonly url: string
  /** Sent as a JSON body. */
  readonly json?: unknown
  /**
   * "client": HTTP Basic with the client's id and secret, form-urlencoded first (RFC 6749
   * §2.3.1; none for a public client); or the Authorization header's value.
   */
  readonly authorization?: "client" | Redacted.Redacted<string>
}

/** What the platform answered: its status, and its body when that is JSON. */
export interface PlatformAnswer {
  readonly status: number
  readonly json: Option.Option<unknown>
}

/**
 * What a platform's small functions may use: its settings and HTTP helpers bound to it. Every
 * request they send carries the platform's headers (a User-Agent, and the definition's
 * `headers`), runs within its timeout and through its circuit breaker, and fails with the
 * transient errors on a network failure, a timeout, a 5xx or a 429.
 */
export interface PlatformContext {
  readonly platform: string
  readonly settings: PlatformSettings
  /** GET a platform API with the access token; 401/403 become InvalidGrant (the token is dead). */
  readonly getJson: (url: string, accessToken: Redacted.Redacted<string>) => Effect.Effect<unknown, ProviderError>
  /** POST JSON with an Authorization header value as the platform wants it. */
  readonly postJson: (
    url: string,
    body: unknown,
    authorization: Option.Option<Redacted.Redacted<string>>
  ) => Effect.Effect<unknown, ProviderError>
  /** The token endpoint, for grants beyond code and refresh (Wix's anonymous grant). */
  readonly tokenRequest: (params: Readonly<Record<string, string>>) => Effect.Effect<TokenGrant, ProviderError>
  /** Any other request; every answer that is not a transient failure is the caller's to read. */
  readonly request: (request: PlatformRequest) => Effect.Effect<PlatformAnswer, ProviderError>
}

export type PkceSupport = "required" | "supported" | "unconfirmed" | "none"

/**
 * A platform, as data plus the few functions where its wire format differs from plain
 * OAuth 2.0. The generic engine (src/oauth) does everything else.
 */
export interface PlatformDefinition {
  readonly key: string
  readonly displayName: string
  /**
   * Default endpoint URLs by name; `authorize` and `token` are required. A `refresh` endpoint
   * always follows the resolved token URL unless `<KEY>_REFRESH_URL` is set.
   */
  readonly endpoints: { readonly authorize: string; readonly token: string } & Readonly<Record<string, string>>
  readonly scopes: ReadonlyArray<string>
  readonly scopeSeparator: string
  /** Extra authorize parameters (access_type, prompt, ...). */
  readonly authorizeParams: Readonly<Record<string, string>>
  /**
   * What the platform does with PKCE (RFC 7636), as its documentation confirms it: "required"
   * (it refuses a flow without a challenge), "supported" (it checks the verifier of a challenge
   * it was sent), "unconfirmed" (not known either way), "none" (it has no PKCE). A challenge is
   * sent by default where required or supported, and `<KEY>_PKCE` may say otherwise, except
   * that it cannot turn PKCE off where it is required, nor outside development where it is
   * supported: without PKCE a code taken from one user's flow can be redeemed in another's
   * (RFC 9700 §4.5).
   */
  readonly pkce: PkceSupport
  /**
   * RFC 9207: the issuer identifier the authorization server sends as `iss` in its
   * authorization responses. A callback whose `iss` differs is refused before any exchange;
   * one without `iss` is refused only when the server always sends it.
   */
  readonly issuer?: { readonly identifier: string; readonly alwaysSent: boolean }
  /** A public client has no secret (Wix Headless). */
  readonly client: "confidential" | "public"
  /** Client authentication at the token endpoint: in the body, or HTTP Basic (RFC 6749 §2.3.1). */
  readonly clientAuth: "body" | "basic"
  readonly tokenBody: "form" | "json"
  /** Token request parameter names: OAuth's snake_case, or camelCase (Wix). */
  readonly paramCase: "snake" | "camel"
  /** Which endpoint serves the refresh grant; "none" when tokens cannot be refreshed. */
  readonly refresh: "token" | "refresh" | "none"
  /** Consecutive invalid_grant answers to a refresh before the connection needs re-authorisation. */
  readonly invalidGrantTolerance: number
  /** Revoke on disconnect: at the `revoke` endpoint (RFC 7009), or with `revoke` when the definition has one. */
  readonly revocation: boolean
  /**
   * Revokes a grant the platform's own way, where revocation is not RFC 7009 (GitHub deletes
   * a grant with `DELETE /applications/{client_id}/grant`). Given the refresh token where there
   * is one, else the access token; succeeds when the grant is gone, already gone included.
   */
  readonly revoke?: (context: PlatformContext, token: Redacted.Redacted<string>) => Effect.Effect<void, ProviderError>
  /**
   * Headers sent with every request to the platform, beside `User-Agent:
   * oauth-integrations/<version>` (which a `user-agent` here replaces).
   */
  readonly headers?: Readonly<Record<string, string>>
  /** How API calls present the access token (`Bearer <token>` unless the platform says otherwise). */
  readonly authorizationHeader?: (accessToken: string) => string
  /** Builds the authorization URL when it is not a plain query on `authorize` (Wix). */
  readonly authorizationUrl?: (
    context: PlatformContext,
    request: AuthorizationRequest,
    plain: () => string
  ) => Effect.Effect<string, ProviderError>
  /** Looks up the account and what to keep about it; must tolerate lookups that fail. */
  readonly account?: (context: PlatformContext, grant: TokenGrant) => Effect.Effect<AccountInfo, ProviderError>
  /** Checks a token that does not expire is still alive; fails with InvalidGrant when it is not. */
  readonly validate?: (context: PlatformContext, accessToken: Redacted.Redacted<string>) => Effect.Effect<void, ProviderError>
}
