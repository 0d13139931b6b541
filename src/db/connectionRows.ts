import { Effect, Schema } from "effect"
import { Connection } from "../domain/Connection.js"

const columnNames = [
  "id", "user_id", "platform", "account_id", "status", "key_id", "token_type", "scope", "expires_at", "provider_data",
  "refresh_failures", "last_refresh_error", "last_refreshed_at", "next_attempt_at", "lease_until", "invalid_grant_streak",
  "last_validated_at", "expiry_warned_at", "unverified", "failing_since", "failing_announced", "created_at", "updated_at"
]
/** The columns of a Connection, optionally qualified by a table alias (for UPDATE ... FROM). */
const columnsOf = (alias: string) => {
  const q = alias === "" ? "" : `${alias}.`
  return [...columnNames.map((c) => `${q}${c}`), `(${q}refresh_token is not null) as has_refresh_token`].join(", ")
}
/** What a statement selects or returns to give Connection rows. */
export const connectionColumns = columnsOf("")

/** A row's ciphertexts and the id of the key that sealed them, as stored. */
export const TokenRow = Schema.Struct({
  keyId: Schema.NullOr(Schema.String),
  accessToken: Schema.NullOr(Schema.Uint8ArrayFromSelf),
  refreshToken: Schema.NullOr(Schema.Uint8ArrayFromSelf)
})
export type SealedTokens = typeof TokenRow.Type

const ClaimedRow = Schema.Struct({
  ...Connection.fields,
  sealedAccessToken: Schema.NullOr(Schema.Uint8ArrayFromSelf),
  sealedRefreshToken: Schema.NullOr(Schema.Uint8ArrayFromSelf)
})
const decodeClaimedRows = Schema.decodeUnknown(Schema.Array(ClaimedRow))

/** What a claim (UPDATE oauth_connections c ... RETURNING) gives: the rows of ClaimedRow. */
export const claimedColumns = `${columnsOf("c")}, c.access_token as sealed_access_token, c.refresh_token as sealed_refresh_token`

/** A row the monitor holds the lease of, with its ciphertexts. */
export interface Claimed {
  readonly connection: Connection
  readonly sealed: SealedTokens
}

/** Claimed rows come with their ciphertexts, so refreshing them reads nothing more. */
export const decodeClaimed = (rows: ReadonlyArray<unknown>) =>
  Effect.map(decodeClaimedRows(rows), (found) =>
    found.map(({ sealedAccessToken, sealedRefreshToken, ...connection }): Claimed => ({
      connection,
      sealed: { keyId: connection.keyId, accessToken: sealedAccessToken, refreshToken: sealedRefreshToken }
    })))

/** A refresh's result as the store statement takes it (ciphertexts made, events as JSON). */
export interface RefreshRow {
  readonly id: string
  readonly owner: string
  readonly access: Buffer
  readonly keyId: string
  readonly refresh: Buffer | null
  /** The refresh token column: the one given, the one stored, or none. */
  readonly mode: "set" | "keep" | "drop"
  readonly tokenType: string | null
  readonly scope: string | null
  readonly expiresAt: Date | null
  readonly at: Date
  readonly events: string
}

/** An imported connection, sealed, as the import statement writes it. */
export interface ImportRow {
  readonly replaces: boolean
  readonly userId: string
  readonly platform: string
  readonly accountId: string
  readonly status: "active" | "needs_reauth"
  readonly access: Buffer | null
  readonly refresh: Buffer | null
  readonly keyId: string
  readonly tokenType: string | null
  readonly scope: string | null
  readonly expiresAt: Date | null
  /** JSON. */
  readonly providerData: string
  readonly unverified: boolean
  readonly updatedAt: Date
  /** The `imported` event's detail, JSON. */
  readonly detail: string
}
