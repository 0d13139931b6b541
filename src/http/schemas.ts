import { Schema } from "effect"

/** Identifiers arrive in paths: printable, no slashes or spaces, at most 200 characters. */
export const USER_ID = "[A-Za-z0-9._:@|+-]{1,200}"
export const PLATFORM_KEY = "[a-z0-9_-]{1,40}"

export const UserId = Schema.String.pipe(
  Schema.pattern(new RegExp(`^${USER_ID}$`), {
    message: () => "user_id must be 1-200 characters of letters, digits and . _ : @ | + -"
  })
)
export const PlatformKey = Schema.String.pipe(
  Schema.pattern(new RegExp(`^${PLATFORM_KEY}$`), { message: () => "platform must be a lower-case platform key such as gsc" })
)

export const UserPath = Schema.Struct({ user_id: UserId })
export const UserPlatformPath = Schema.Struct({ user_id: UserId, platform: PlatformKey })
export const PlatformPath = Schema.Struct({ platform: PlatformKey })

const Timestamp = Schema.NullOr(Schema.String).annotations({ description: "ISO 8601 instant" })
const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

export const BreakerHealthJson = Schema.Struct({
  state: Schema.Literal("closed", "open", "half_open"),
  consecutive_failures: Schema.Number,
  half_open_successes: Schema.Number,
  opened_count: Schema.Number,
  last_failure_at: Timestamp,
  last_failure_kind: Schema.NullOr(Schema.String),
  last_error_at: Timestamp,
  last_error_kind: Schema.NullOr(Schema.String),
  retry_after_ms: Schema.NullOr(Schema.Number)
})

export const PlatformJson = Schema.Struct({
  key: Schema.String,
  display_name: Schema.String,
  configured: Schema.Boolean,
  state: Schema.Literal("configured", "not_configured", "misconfigured"),
  problems: Schema.Array(Schema.String),
  health: Schema.NullOr(BreakerHealthJson)
})

export const PlatformsResponse = Schema.Struct({ platforms: Schema.Array(PlatformJson) })

export const AccountJson = Schema.Struct({
  account_id: Schema.String,
  connected: Schema.Boolean,
  status: Schema.Literal("active", "needs_reauth", "revoked", "disconnected", "expired", "unreadable"),
  expires_at: Timestamp,
  scope: Schema.NullOr(Schema.String),
  connected_at: Schema.String,
  last_refreshed_at: Timestamp,
  last_error: Schema.NullOr(Schema.String),
  provider_data: JsonObject
})

export const ConnectionStatusJson = Schema.Struct({
  platform: Schema.String,
  display_name: Schema.String,
  configured: Schema.Boolean,
  connected: Schema.Boolean,
  status: Schema.Literal("connected", "not_connected", "needs_reauth", "revoked", "expired", "disconnected", "not_configured", "unreadable"),
  accounts: Schema.Array(AccountJson),
  details: JsonObject,
  error: Schema.NullOr(Schema.String),
  degraded: Schema.Boolean,
  degraded_reason: Schema.NullOr(Schema.String)
})

export const ConnectionsResponse = Schema.Struct({
  user_id: Schema.String,
  connections: Schema.Array(ConnectionStatusJson)
})

export const ConfirmRequest = Schema.Struct({
  confirmation: Schema.String.pipe(
    Schema.pattern(/^[A-Za-z0-9_-]{1,200}$/, { message: () => "confirmation must be the code the callback gave (letters, digits, - and _)" })
  ).annotations({ description: "The one-time code the callback gave the browser (status=pending)" })
})

export const AuthorizeRequest = Schema.Struct({
  return_to: Schema.optional(Schema.String.pipe(Schema.maxLength(2048))),
  mode: Schema.optional(Schema.Literal("redirect", "popup"))
})

export const AuthUrlPayloadJson = Schema.Struct({
  auth_url: Schema.String,
  state: Schema.String,
  expires_at: Schema.String,
  details: Schema.Struct({
    platform: Schema.String,
    display_name: Schema.String,
    mode: Schema.Literal("redirect", "popup"),
    scopes: Schema.Array(Schema.String),
    pkce: Schema.Boolean
  })
})

export const TokenResponseJson = Schema.Struct({
  access_token: Schema.String,
  token_type: Schema.NullOr(Schema.String),
  expires_at: Timestamp,
  scope: Schema.NullOr(Schema.String),
  account_id: Schema.String,
  refresh_error: Schema.NullOr(Schema.String).annotations({
    description:
      "Set when a refresh was due but the stored token, still valid, is returned: the refresh failed transiently (the error's tag), or was still under way after TOKEN_REFRESH_WAIT (RefreshPending; it goes on, and a later call gets the new token)"
  })
})

export const DisconnectResponse = Schema.Struct({
  platform: Schema.String,
  disconnected: Schema.Number,
  revoked: Schema.Boolean
})

/**
 * Lenient on purpose: whatever the platform (or someone else) sends, the browser is answered
 * with a redirect or the popup page; a repeated or over-long value makes it invalid_request.
 * Other parameters (scope, iss, error_description...) are ignored.
 */
const CallbackParam = Schema.Union(Schema.String, Schema.Array(Schema.String))

export const CallbackQuery = Schema.Struct({
  state: Schema.optional(CallbackParam),
  code: Schema.optional(CallbackParam),
  error: Schema.optional(CallbackParam),
  iss: Schema.optional(CallbackParam)
})

export const StepFiveResponse = Schema.Union(
  Schema.Struct({
    valid: Schema.Literal(true),
    connected_platforms: Schema.Array(Schema.Struct({ platform: Schema.String, display_name: Schema.String, details: JsonObject })),
    message: Schema.String
  }),
  Schema.Struct({
    valid: Schema.Literal(false),
    error: Schema.String,
    connected_platforms: Schema.Array(Schema.Struct({ platform: Schema.String, display_name: Schema.String, details: JsonObject }))
  })
)

export const EventsQuery = Schema.Struct({
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 200))),
  before: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.positive()))
})

export const EventJson = Schema.Struct({
  id: Schema.Number,
  connection_id: Schema.NullOr(Schema.String),
  platform: Schema.String,
  kind: Schema.String,
  detail: JsonObject,
  at: Schema.String
})

export const EventsResponse = Schema.Struct({
  user_id: Schema.String,
  events: Schema.Array(EventJson),
  next_before: Schema.NullOr(Schema.Number)
})

export const HealthResponse = Schema.Struct({ status: Schema.Literal("ok"), database: Schema.Literal("up") })

export const ProvidersHealthResponse = Schema.Struct({
  providers: Schema.Array(Schema.Struct({
    platform: Schema.String,
    configured: Schema.Boolean,
    state: Schema.Literal("closed", "open", "half_open", "not_configured", "misconfigured"),
    health: Schema.NullOr(BreakerHealthJson)
  }))
})
