import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"

/** The database could not be reached or refused a statement; retry later. */
export class DatabaseUnavailable extends Schema.TaggedError<DatabaseUnavailable>()(
  "DatabaseUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

/** A stored ciphertext could not be decrypted: unknown key id, malformed bytes, or tampering. */
export class TokenDecryptionFailed extends Schema.TaggedError<TokenDecryptionFailed>()(
  "TokenDecryptionFailed",
  {
    keyId: Schema.String,
    reason: Schema.Literal("unknown-key", "malformed", "authentication-failed")
  }
) {
  override get message() {
    return `cannot decrypt a token sealed with key "${this.keyId}": ${this.reason}`
  }
}

/** The stored tokens of a connection cannot be read (see TokenDecryptionFailed); it needs re-authorisation. */
export class ConnectionUnreadable extends Schema.TaggedError<ConnectionUnreadable>()(
  "ConnectionUnreadable",
  {
    platform: Schema.String,
    reason: Schema.String
  },
  HttpApiSchema.annotations({ status: 409 })
) {}

/**
 * How a refused state's flow began, when the state is known: the callback answers in the
 * mode the flow began with (a popup's opener waits for its message) and returns to its return_to.
 */
const flowOrigin = {
  mode: Schema.optional(Schema.Literal("redirect", "popup")),
  returnTo: Schema.optional(Schema.NullOr(Schema.String))
}

/** The callback's state is missing, unknown, already used, or belongs to another platform. */
export class InvalidState extends Schema.TaggedError<InvalidState>()(
  "InvalidState",
  { reason: Schema.Literal("missing", "unknown", "replayed", "platform-mismatch"), ...flowOrigin },
  HttpApiSchema.annotations({ status: 400 })
) {
  override get message() {
    return `invalid state: ${this.reason}`
  }
}

/** The authorisation took longer than the state's lifetime (10 minutes); start again. */
export class StateExpired extends Schema.TaggedError<StateExpired>()(
  "StateExpired",
  flowOrigin,
  HttpApiSchema.annotations({ status: 400 })
) {
  override get message() {
    return "the authorisation request expired"
  }
}

/** No platform has this key. */
export class UnknownPlatform extends Schema.TaggedError<UnknownPlatform>()(
  "UnknownPlatform",
  { platform: Schema.String, known: Schema.Array(Schema.String) },
  HttpApiSchema.annotations({ status: 404 })
) {
  override get message() {
    return `unknown platform "${this.platform}"; known platforms: ${this.known.join(", ")}`
  }
}

/** The platform is registered but its settings are missing or invalid; `problems` name the variables. */
export class PlatformNotConfigured extends Schema.TaggedError<PlatformNotConfigured>()(
  "PlatformNotConfigured",
  { platform: Schema.String, problems: Schema.Array(Schema.String) },
  HttpApiSchema.annotations({ status: 409 })
) {
  override get message() {
    return `platform "${this.platform}" is not configured: ${this.problems.join("; ")}`
  }
}

/** A redirect URI breaks the redirect policy; names the variable and the rule. */
export class RedirectUriInvalid extends Schema.TaggedError<RedirectUriInvalid>()(
  "RedirectUriInvalid",
  { variable: Schema.String, rule: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {
  override get message() {
    return `${this.variable}: ${this.rule}`
  }
}

/** The user (or the platform) refused the authorisation: `error` is the OAuth error code. */
export class AuthorizationDenied extends Schema.TaggedError<AuthorizationDenied>()(
  "AuthorizationDenied",
  { platform: Schema.String, error: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** The callback lacks what it needs (no code). */
export class InvalidCallback extends Schema.TaggedError<InvalidCallback>()(
  "InvalidCallback",
  { platform: Schema.String, reason: Schema.Literal("missing-code") },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** The grant (code or refresh token) is invalid, expired or revoked: the user must re-authorise. */
export class InvalidGrant extends Schema.TaggedError<InvalidGrant>()(
  "InvalidGrant",
  { platform: Schema.String, description: Schema.optional(Schema.String) },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** The platform refused our client credentials: a configuration problem on our side. */
export class InvalidClient extends Schema.TaggedError<InvalidClient>()(
  "InvalidClient",
  { platform: Schema.String, error: Schema.String },
  HttpApiSchema.annotations({ status: 502 })
) {}

/**
 * The platform could not be reached, answered 5xx, timed out, or gave an invalid_grant that
 * this platform is known to answer spuriously (Bing): retry later.
 */
export class ProviderUnavailable extends Schema.TaggedError<ProviderUnavailable>()(
  "ProviderUnavailable",
  {
    platform: Schema.String,
    reason: Schema.Literal("status", "network", "timeout", "invalid_grant_tolerated"),
    status: Schema.optional(Schema.Number)
  },
  HttpApiSchema.annotations({ status: 503 })
) {}

/** The platform answered 429; `retryAfterMs` from its Retry-After when it gave one (`retry_after_ms` in JSON). */
export class RateLimited extends Schema.TaggedError<RateLimited>()(
  "RateLimited",
  { platform: Schema.String, retryAfterMs: Schema.optional(Schema.Number).pipe(Schema.fromKey("retry_after_ms")) },
  HttpApiSchema.annotations({ status: 503 })
) {}

/** The platform's answer could not be understood (not JSON, missing fields, unexpected error). */
export class ProviderResponseInvalid extends Schema.TaggedError<ProviderResponseInvalid>()(
  "ProviderResponseInvalid",
  { platform: Schema.String, detail: Schema.String },
  HttpApiSchema.annotations({ status: 502 })
) {}

/** The platform's circuit breaker is open: calls fail fast until `retryAfterMs` has passed (`retry_after_ms` in JSON). */
export class CircuitOpen extends Schema.TaggedError<CircuitOpen>()(
  "CircuitOpen",
  { platform: Schema.String, retryAfterMs: Schema.propertySignature(Schema.Number).pipe(Schema.fromKey("retry_after_ms")) },
  HttpApiSchema.annotations({ status: 503 })
) {}

/** The user has no usable connection to the platform. */
export class NotConnected extends Schema.TaggedError<NotConnected>()(
  "NotConnected",
  { platform: Schema.String, status: Schema.optional(Schema.String) },
  HttpApiSchema.annotations({ status: 404 })
) {}

/**
 * The platform refused the stored authorisation (needs_reauth): only the user can mend it, by
 * connecting again. Answered at once without calling the platform, however often it is asked,
 * so that a caller retrying on every failure cannot make a storm of refused refreshes.
 */
export class ReauthRequired extends Schema.TaggedError<ReauthRequired>()(
  "ReauthRequired",
  { platform: Schema.String, status: Schema.Literal("needs_reauth"), message: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** No webhook delivery has this id (it may have been deleted after WEBHOOK_RETENTION). */
export class DeliveryNotFound extends Schema.TaggedError<DeliveryNotFound>()(
  "DeliveryNotFound",
  { id: Schema.Number },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** The delivery's endpoint is not in the configuration any more: it cannot be signed nor sent. */
export class EndpointNotConfigured extends Schema.TaggedError<EndpointNotConfigured>()(
  "EndpointNotConfigured",
  { endpoint: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** A connect session that does not exist (or was deleted) or has expired: the page says so and offers nothing. */
export class SessionInvalid extends Schema.TaggedError<SessionInvalid>()(
  "SessionInvalid",
  { reason: Schema.Literal("missing", "unknown", "expired"), message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {}

/** A platform the connect session does not offer, or a disconnection it does not allow. */
export class NotInSession extends Schema.TaggedError<NotInSession>()(
  "NotInSession",
  { platform: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** Failures of a call to a platform. */
export type ProviderError =
  | InvalidGrant
  | InvalidClient
  | ProviderUnavailable
  | RateLimited
  | ProviderResponseInvalid
  | CircuitOpen

/** Transient failures: retried, and counted by the circuit breaker. */
export type TransientError = ProviderUnavailable | RateLimited

export const isTransient = (error: unknown): error is TransientError =>
  error instanceof ProviderUnavailable || error instanceof RateLimited

/** return_to is not an absolute URL on an allowed origin: no open redirect. */
export class InvalidReturnTo extends Schema.TaggedError<InvalidReturnTo>()(
  "InvalidReturnTo",
  { rule: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {
  override get message() {
    return `return_to ${this.rule}`
  }
}

/** Another process holds the connection's refresh lease and did not finish in time. */
export class RefreshInProgress extends Schema.TaggedError<RefreshInProgress>()(
  "RefreshInProgress",
  { platform: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

/**
 * The grant of a confirmation code was obtained by a flow started for another user: it is
 * revoked at the platform where the platform allows it, and nothing is connected.
 */
export class ConfirmationRefused extends Schema.TaggedError<ConfirmationRefused>()(
  "ConfirmationRefused",
  { platform: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** No grant waits for this confirmation code (unknown, already used, or for another platform), or it expired. */
export class InvalidConfirmation extends Schema.TaggedError<InvalidConfirmation>()(
  "InvalidConfirmation",
  { platform: Schema.String, reason: Schema.Literal("unknown", "expired"), message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}
