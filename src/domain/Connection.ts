import { type Option, type Redacted, Schema } from "effect"

export const ConnectionStatus = Schema.Literal("active", "needs_reauth", "revoked", "disconnected")
export type ConnectionStatus = typeof ConnectionStatus.Type

export interface ConnectionIdentity {
  readonly userId: string
  readonly platform: string
  /** '' when the platform has no account notion. */
  readonly accountId: string
}

const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** A stored connection without its tokens (reading it needs no decryption). */
export const Connection = Schema.Struct({
  id: Schema.String,
  userId: Schema.String,
  platform: Schema.String,
  accountId: Schema.String,
  status: ConnectionStatus,
  keyId: Schema.NullOr(Schema.String),
  hasRefreshToken: Schema.Boolean,
  tokenType: Schema.NullOr(Schema.String),
  scope: Schema.NullOr(Schema.String),
  expiresAt: Schema.NullOr(Schema.DateFromSelf),
  providerData: JsonObject,
  refreshFailures: Schema.Number,
  lastRefreshError: Schema.NullOr(Schema.String),
  lastRefreshedAt: Schema.NullOr(Schema.DateFromSelf),
  nextAttemptAt: Schema.NullOr(Schema.DateFromSelf),
  leaseUntil: Schema.NullOr(Schema.DateFromSelf),
  invalidGrantStreak: Schema.Number,
  lastValidatedAt: Schema.NullOr(Schema.DateFromSelf),
  expiryWarnedAt: Schema.NullOr(Schema.DateFromSelf),
  /** An imported access token without expiry or refresh token that no monitor pass has validated yet. */
  unverified: Schema.Boolean,
  /** Since when the connection's refreshes have failed transiently, without a success since. */
  failingSince: Schema.NullOr(Schema.DateFromSelf),
  /** Whether connection.refresh_failing was sent for these failures. */
  failingAnnounced: Schema.Boolean,
  createdAt: Schema.DateFromSelf,
  updatedAt: Schema.DateFromSelf
})
export type Connection = typeof Connection.Type

/** Tokens as the platform issued them, decrypted; Redacted so no log line can show them. */
export interface TokenSet {
  readonly accessToken: Redacted.Redacted<string>
  readonly refreshToken: Option.Option<Redacted.Redacted<string>>
}

/** The tokens a stored row holds or an import brings, either of which may be missing. */
export interface HeldTokens {
  readonly accessToken: Option.Option<Redacted.Redacted<string>>
  readonly refreshToken: Option.Option<Redacted.Redacted<string>>
}

/** What a successful code exchange or refresh gives to store. */
export interface IssuedTokens extends TokenSet {
  readonly tokenType: string | null
  readonly scope: string | null
  /** null: the token does not expire (or its lifetime is unknown). */
  readonly expiresAt: Date | null
}

export const EventKind = Schema.Literal(
  "connected",
  "refreshed",
  "refresh_failed",
  "needs_reauth",
  "expiring_soon",
  "disconnected",
  "revoked",
  "recovered",
  "confirmation_refused",
  "imported",
  "refresh_failing"
)
export type EventKind = typeof EventKind.Type

export const ConnectionEvent = Schema.Struct({
  id: Schema.Number,
  connectionId: Schema.NullOr(Schema.String),
  userId: Schema.String,
  platform: Schema.String,
  kind: EventKind,
  detail: JsonObject,
  at: Schema.DateFromSelf
})
export type ConnectionEvent = typeof ConnectionEvent.Type
