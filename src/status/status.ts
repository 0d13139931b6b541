import type { Connection } from "../domain/Connection.js"

/**
 * The one definition of "connected" as far as the row tells: an active connection whose
 * token is unexpired, or can be refreshed. Whether its tokens can be opened with the
 * configured keys is the status's concern (`platformStatus`'s `knowsKey`): the token
 * endpoint still picks such a row, and answers ConnectionUnreadable for it.
 */
export const isConnected = (connection: Connection, now: Date): boolean =>
  connection.status === "active" && !connection.unverified &&
  (connection.expiresAt === null || connection.expiresAt.getTime() > now.getTime() || connection.hasRefreshToken)

export type PlatformState =
  | "connected"
  | "not_connected"
  | "needs_reauth"
  | "revoked"
  | "expired"
  | "disconnected"
  | "not_configured"
  | "unreadable"
  | "unverified"

export interface AccountStatus {
  readonly accountId: string
  readonly connected: boolean
  /**
   * "unreadable": active and usable but for its key, which TOKEN_ENCRYPTION_KEYS lacks.
   * "unverified": imported, waiting for a monitor pass to check its token with the platform.
   */
  readonly status: Connection["status"] | "expired" | "unreadable" | "unverified"
  readonly expiresAt: Date | null
  readonly scope: string | null
  readonly connectedAt: Date
  readonly lastRefreshedAt: Date | null
  readonly lastError: string | null
  readonly providerData: Readonly<Record<string, unknown>>
}

export interface PlatformStatus {
  readonly platform: string
  readonly displayName: string
  readonly configured: boolean
  readonly connected: boolean
  readonly status: PlatformState
  readonly accounts: ReadonlyArray<AccountStatus>
  /** What the connected account offers (sites, blog, site id), from the newest connected account. */
  readonly details: Readonly<Record<string, unknown>>
  /** Why the platform is not usable, for people; null when it is. */
  readonly error: string | null
  /** True when the platform cannot be reached now: the answer comes from stored data only. */
  readonly degraded: boolean
  readonly degradedReason: string | null
}

/** Whether the row's tokens are sealed under a configured key (a row without a key id seals nothing). */
const sealedUnderKnownKey = (c: Connection, knowsKey: (keyId: string) => boolean) => c.keyId === null || knowsKey(c.keyId)

/**
 * An expired, unrefreshable token stays "expired" under an unknown key: restoring the key
 * would not make it usable again.
 */
export const accountStatus = (c: Connection, now: Date, knowsKey: (keyId: string) => boolean): AccountStatus => {
  const connected = isConnected(c, now)
  const readable = sealedUnderKnownKey(c, knowsKey)
  return {
    accountId: c.accountId,
    connected: connected && readable,
    status: c.status !== "active" ? c.status : c.unverified ? "unverified" : !connected ? "expired" : readable ? "active" : "unreadable",
    expiresAt: c.expiresAt,
    scope: c.scope,
    connectedAt: c.createdAt,
    lastRefreshedAt: c.lastRefreshedAt,
    lastError: c.lastRefreshError,
    providerData: c.providerData
  }
}

/**
 * Most actionable first: a state the user can fix outranks one that needs nothing. Unreadable
 * comes first: it is a fault of this service that may hide a good connection (restoring the
 * key recovers it), and reconnecting mends it as it mends the others.
 */
const precedence: ReadonlyArray<PlatformState> = ["unreadable", "needs_reauth", "revoked", "expired", "unverified", "disconnected"]

const messages: Record<PlatformState, string | null> = {
  connected: null,
  not_connected: null,
  needs_reauth: "The platform refused the stored authorisation; the user must connect again",
  revoked: "Access was revoked on the platform; the user must connect again",
  expired: "The access token expired and cannot be refreshed; the user must connect again",
  disconnected: null,
  not_configured: "The platform is not configured on this service",
  unreadable: "The stored tokens cannot be decrypted with the configured TOKEN_ENCRYPTION_KEYS; restore the key or reconnect",
  unverified: "Imported; the token is checked with the platform at the next monitor pass"
}

/**
 * A platform's status from its stored connections (already read; no I/O here). `knowsKey`
 * tells whether a key id is configured (TokenCipher.knows): a connection sealed under
 * another key is "unreadable", told without decrypting anything.
 */
export const platformStatus = (
  platform: {
    readonly key: string
    readonly displayName: string
    readonly configured: boolean
    readonly degradedReason?: string | null
  },
  connections: ReadonlyArray<Connection>,
  now: Date,
  knowsKey: (keyId: string) => boolean
): PlatformStatus => {
  const accounts = connections.map((c) => accountStatus(c, now, knowsKey))
  const connectedAccounts = accounts.filter((a) => a.connected)
  const newest = connections
    .filter((c) => isConnected(c, now) && sealedUnderKnownKey(c, knowsKey))
    .sort((a, b) => b.updatedAt.getTime() - a.updatedAt.getTime())[0]
  const status: PlatformState = connectedAccounts.length > 0
    ? "connected"
    : precedence.find((s) => accounts.some((a) => a.status === s)) ?? (platform.configured ? "not_connected" : "not_configured")
  return {
    platform: platform.key,
    displayName: platform.displayName,
    configured: platform.configured,
    connected: connectedAccounts.length > 0,
    status,
    accounts,
    details: newest?.providerData ?? {},
    error: status === "connected" ? null : messages[status],
    degraded: (platform.degradedReason ?? null) !== null,
    degradedReason: platform.degradedReason ?? null
  }
}
