import { Schema } from "effect"
import { ConnectionStatus as StoredStatus } from "../domain/Connection.js"

/**
 * What the API answers, each declared as a transformation from the domain value the handler
 * returns to the JSON the client reads: snake_case names over the domain's camelCase fields
 * (in the order the JSON lists them), Dates as ISO 8601 strings, Redacted secrets as their
 * value, Options as null. The contract encodes every answer with these; the status cache
 * stores the bytes of the same encoding.
 */

/** A field named `key` on the wire. */
const wire = <const Key extends string, S extends Schema.Schema.All>(key: Key, schema: S) =>
  Schema.propertySignature(schema).pipe(Schema.fromKey(key))

/**
 * A Date, and its `toISOString()` on the wire. Schema.Date encodes alike, but documents every
 * instant as a reference to a "Date" component instead of the plain string the API documents.
 */
const Instant = Schema.transform(Schema.String, Schema.ValidDateFromSelf, {
  strict: true,
  decode: (iso) => new Date(iso),
  encode: (date) => date.toISOString()
})

const Timestamp = Schema.NullOr(Instant).annotations({ description: "ISO 8601 instant" })
const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

export const BreakerHealth = Schema.Struct({
  state: Schema.Literal("closed", "open", "half_open"),
  consecutiveFailures: wire("consecutive_failures", Schema.Number),
  halfOpenSuccesses: wire("half_open_successes", Schema.Number),
  openedCount: wire("opened_count", Schema.Number),
  lastFailureAt: wire("last_failure_at", Timestamp),
  lastFailureKind: wire("last_failure_kind", Schema.NullOr(Schema.String)),
  lastErrorAt: wire("last_error_at", Timestamp),
  lastErrorKind: wire("last_error_kind", Schema.NullOr(Schema.String)),
  retryAfterMs: wire("retry_after_ms", Schema.NullOr(Schema.Number))
})

export const Platform = Schema.Struct({
  key: Schema.String,
  displayName: wire("display_name", Schema.String),
  configured: Schema.Boolean,
  state: Schema.Literal("configured", "not_configured", "misconfigured"),
  problems: Schema.Array(Schema.String),
  health: Schema.NullOr(BreakerHealth)
})

export const Platforms = Schema.Struct({ platforms: Schema.Array(Platform) })

export const Account = Schema.Struct({
  accountId: wire("account_id", Schema.String),
  connected: Schema.Boolean,
  status: Schema.Literal(...StoredStatus.literals, "expired", "unreadable", "unverified"),
  expiresAt: wire("expires_at", Timestamp),
  scope: Schema.NullOr(Schema.String),
  connectedAt: wire("connected_at", Instant),
  lastRefreshedAt: wire("last_refreshed_at", Timestamp),
  lastError: wire("last_error", Schema.NullOr(Schema.String)),
  providerData: wire("provider_data", JsonObject)
})

export const ConnectionStatus = Schema.Struct({
  platform: Schema.String,
  displayName: wire("display_name", Schema.String),
  configured: Schema.Boolean,
  connected: Schema.Boolean,
  status: Schema.Literal("connected", "not_connected", "needs_reauth", "revoked", "expired", "disconnected", "not_configured", "unreadable", "unverified"),
  accounts: Schema.Array(Account),
  details: JsonObject,
  error: Schema.NullOr(Schema.String),
  degraded: Schema.Boolean,
  degradedReason: wire("degraded_reason", Schema.NullOr(Schema.String))
})

export const Connections = Schema.Struct({
  userId: wire("user_id", Schema.String),
  connections: Schema.Array(ConnectionStatus)
})

export const AuthUrl = Schema.Struct({
  authUrl: wire("auth_url", Schema.String),
  state: Schema.Redacted(Schema.String),
  expiresAt: wire("expires_at", Instant),
  details: Schema.Struct({
    platform: Schema.String,
    displayName: wire("display_name", Schema.String),
    mode: Schema.Literal("redirect", "popup"),
    scopes: Schema.Array(Schema.String),
    pkce: Schema.Boolean
  })
})

export const AccessToken = Schema.Struct({
  // Described, or the documentation would show the Type side's own description, "Redacted(<redacted>)".
  accessToken: wire("access_token", Schema.Redacted(Schema.String)).annotations({ description: "The access token, to send to the platform" }),
  tokenType: wire("token_type", Schema.NullOr(Schema.String)),
  expiresAt: wire("expires_at", Timestamp),
  scope: Schema.NullOr(Schema.String),
  accountId: wire("account_id", Schema.String),
  refreshError: wire("refresh_error", Schema.OptionFromNullOr(Schema.String)).annotations({
    description:
      "Set when a refresh was due but the stored token, still valid, is returned: the refresh failed transiently (the error's tag), or was still under way after TOKEN_REFRESH_WAIT (RefreshPending; it goes on, and a later call gets the new token)"
  })
})

export const Disconnected = Schema.Struct({
  platform: Schema.String,
  disconnected: Schema.Number,
  revoked: Schema.Boolean
})

export const Imported = Schema.Struct({
  outcome: Schema.Literal("created", "updated", "unchanged", "stale").annotations({
    description:
      "created: a new connection; updated: the import replaced the stored tokens; unchanged: the connection already held them; stale: the connection changed after the import's updated_at and was kept"
  }),
  platform: Schema.String,
  account: Account
})

const ConnectedPlatform = Schema.Struct({
  platform: Schema.String,
  displayName: wire("display_name", Schema.String),
  details: JsonObject
})

export const StepFive = Schema.Union(
  Schema.Struct({
    valid: Schema.Literal(true),
    connectedPlatforms: wire("connected_platforms", Schema.Array(ConnectedPlatform)),
    message: Schema.String
  }),
  Schema.Struct({
    valid: Schema.Literal(false),
    error: Schema.String,
    connectedPlatforms: wire("connected_platforms", Schema.Array(ConnectedPlatform))
  })
)

export const Event = Schema.Struct({
  id: Schema.Number,
  connectionId: wire("connection_id", Schema.NullOr(Schema.String)),
  platform: Schema.String,
  kind: Schema.String,
  detail: JsonObject,
  at: Instant
})

export const Events = Schema.Struct({
  userId: wire("user_id", Schema.String),
  events: Schema.Array(Event),
  nextBefore: wire("next_before", Schema.NullOr(Schema.Number))
})

export const ConnectSessionCreated = Schema.Struct({
  connectUrl: wire("connect_url", Schema.Redacted(Schema.String)).annotations({
    description: "The connect page, with the session's secret in the fragment: give it to this user's browser only"
  }),
  expiresAt: wire("expires_at", Instant),
  platforms: Schema.Array(Schema.String)
})

/** What the connect page reads of its session: the platforms offered, each with its status. */
export const ConnectSessionView = Schema.Struct({
  expiresAt: wire("expires_at", Instant),
  allowDisconnect: wire("allow_disconnect", Schema.Boolean),
  returnTo: wire("return_to", Schema.NullOr(Schema.String)),
  platforms: Schema.Array(ConnectionStatus)
})

export const WebhookDelivery = Schema.Struct({
  id: Schema.Number,
  messageId: wire("message_id", Schema.String),
  endpoint: Schema.String,
  type: Schema.String,
  userId: wire("user_id", Schema.String),
  platform: Schema.String,
  status: Schema.Literal("pending", "delivered", "failed"),
  attempts: Schema.Number,
  nextAttemptAt: wire("next_attempt_at", Timestamp),
  lastAttemptAt: wire("last_attempt_at", Timestamp),
  lastResponseStatus: wire("last_response_status", Schema.NullOr(Schema.Number)),
  lastError: wire("last_error", Schema.NullOr(Schema.String)),
  createdAt: wire("created_at", Instant),
  finishedAt: wire("finished_at", Timestamp)
})

export const WebhookDeliveries = Schema.Struct({
  deliveries: Schema.Array(WebhookDelivery),
  nextBefore: wire("next_before", Schema.NullOr(Schema.Number))
})

export const Health = Schema.Struct({ status: Schema.Literal("ok"), database: Schema.Literal("up") })

export const ProvidersHealth = Schema.Struct({
  providers: Schema.Array(Schema.Struct({
    platform: Schema.String,
    configured: Schema.Boolean,
    state: Schema.Literal("closed", "open", "half_open", "not_configured", "misconfigured"),
    health: Schema.NullOr(BreakerHealth)
  }))
})
