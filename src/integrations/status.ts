import type { Connection } from "../domain/Connection.js"

/**
 * The one definition of "connected", used everywhere: an active connection whose token
 * is unexpired, or can be refreshed.
 */
export const isConnected = (connection: Connection, now: Date): boolean =>
  connection.status === "active" &&
  (connection.expiresAt === null || connection.expiresAt.getTime() > now.getTime() || connection.hasRefreshToken)

export type PlatformState =
  | "connected"
  | "not_connected"
  | "needs_reauth"
  | "revoked"
  | "expired"
  | "disconnected"
  | "not_configured"

export interface AccountStatus {
  readonly accountId: string
  readonly connected: boolean
  readonly status: Connection["status"] | "expired"
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

const accountStatus = (c: Connection, now: Date): AccountStatus => {
  const connected = isConnected(c, now)
  return {
    accountId: c.accountId,
    connected,
    status: c.status === "active" && !connected ? "expired" : c.status,
    expiresAt: c.expiresAt,
    scope: c.scope,
    connectedAt: c.createdAt,
    lastRefreshedAt: c.lastRefreshedAt,
    lastError: c.lastRefreshError,
    providerData: c.providerData
  }
}

/** Most actionable first: a state the user can fix outranks one that needs nothing. */
const precedence: ReadonlyArray<PlatformState> = ["needs_reauth", "revoked", "expired", "disconnected"]

const messages: Record<PlatformState, string | null> = {
  connected: null,
  not_connected: null,
  needs_reauth: "The platform refused the stored authorisation; the user must connect again",
  revoked: "Access was revoked on the platform; the user must connect again",
  expired: "The access token expired and cannot be refreshed; the user must connect again",
  disconnected: null,
  not_configured: "The platform is not configured on this service"
}

/** A platform's status from its stored connections (already read; no I/O here). */
export const platformStatus = (
  platform: {
    readonly key: string
    readonly displayName: string
    readonly configured: boolean
    readonly degradedReason?: string | null
  },
  connections: ReadonlyArray<Connection>,
  now: Date
): PlatformStatus => {
  const accounts = connections.map((c) => accountStatus(c, now))
  const connectedAccounts = accounts.filter((a) => a.connected)
  const newest = connections.filter((c) => isConnected(c, now)).sort((a, b) => b.updatedAt.getTime() - a.updatedAt.getTime())[0]
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
