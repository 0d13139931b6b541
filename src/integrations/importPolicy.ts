import { Option, Redacted } from "effect"
import type { ImportToWrite } from "../db/connectionWrites.js"
import type { Connection, ConnectionIdentity, HeldTokens } from "../domain/Connection.js"

/** A connection brought in from elsewhere: another integration platform, a spreadsheet, the legacy tables. */
export interface ImportRequest extends ConnectionIdentity, HeldTokens {
  readonly tokenType: string | null
  readonly scope: string | null
  /** null: unknown (not "never expires"). */
  readonly expiresAt: Date | null
  readonly providerData: Readonly<Record<string, unknown>>
  /** When the source last changed these tokens; null: now. */
  readonly updatedAt: Date | null
}

/**
 * created: no row before; updated: the import replaced the stored tokens; unchanged: the row
 * already holds what the import brings; stale: the row holds something else, changed since the
 * import's `updatedAt` (a refresh, another import), and is kept.
 */
export type ImportOutcome = "created" | "updated" | "unchanged" | "stale"

/** A stored row, with its tokens when they could be opened. */
export interface StoredForImport {
  readonly connection: Connection
  readonly tokens: Option.Option<HeldTokens>
}

export const identityKey = (identity: ConnectionIdentity) => JSON.stringify([identity.userId, identity.platform, identity.accountId])

const sameToken = (a: Option.Option<Redacted.Redacted<string>>, b: Option.Option<Redacted.Redacted<string>>) =>
  Option.isNone(a) ? Option.isNone(b) : Option.isSome(b) && Redacted.value(a.value) === Redacted.value(b.value)

/** JSON with its keys sorted, so that two equal objects compare equal whatever their key order. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v)

/**
 * Whether the stored row already holds what the import brings. An unknown expiry matches the
 * stored one: the row knows at least as much.
 */
const holds = (stored: StoredForImport, request: ImportRequest) =>
  Option.match(stored.tokens, {
    onNone: () => false,
    onSome: (tokens) =>
      sameToken(tokens.accessToken, request.accessToken) &&
      sameToken(tokens.refreshToken, request.refreshToken) &&
      stored.connection.tokenType === request.tokenType &&
      stored.connection.scope === request.scope &&
      (request.expiresAt === null || stored.connection.expiresAt?.getTime() === request.expiresAt.getTime()) &&
      canonical(stored.connection.providerData) === canonical(request.providerData)
  })

/** What an import does to the row of its identity, if any. */
export const importOutcome = (stored: Option.Option<StoredForImport>, request: ImportRequest, now: Date): ImportOutcome => {
  if (Option.isNone(stored)) return "created"
  if (holds(stored.value, request)) return "unchanged"
  const importedAt = request.updatedAt ?? now
  return importedAt.getTime() > stored.value.connection.updatedAt.getTime() ? "updated" : "stale"
}

/**
 * The row an import writes. Active when it holds a usable access token or a refresh token,
 * needs_reauth otherwise. A refresh token with an unknown expiry is stored as expiring now, so
 * the next monitor pass (or the first token request) refreshes it; an access token alone with
 * an unknown expiry is unverified until a monitor pass has validated it with the platform.
 */
export const importToWrite = (request: ImportRequest, outcome: "created" | "updated", now: Date): ImportToWrite => {
  const refreshable = Option.isSome(request.refreshToken)
  const usableAccess = Option.isSome(request.accessToken) && (request.expiresAt === null || request.expiresAt.getTime() > now.getTime())
  const status = usableAccess || refreshable ? "active" : "needs_reauth"
  return {
    replaces: outcome === "updated",
    userId: request.userId,
    platform: request.platform,
    accountId: request.accountId,
    status,
    tokens: { accessToken: request.accessToken, refreshToken: request.refreshToken },
    tokenType: request.tokenType,
    scope: request.scope,
    expiresAt: request.expiresAt ?? (refreshable ? now : null),
    providerData: request.providerData,
    unverified: status === "active" && !refreshable && request.expiresAt === null,
    updatedAt: request.updatedAt ?? now,
    detail: { account_id: request.accountId, replaced: outcome === "updated", status }
  }
}
