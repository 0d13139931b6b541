// The baseline: node:http and a pg pool answering GET /v1/users/:id/connections with the
// same query and the same JSON as the service, and nothing else (no framework, no cache).
import { createHash, timingSafeEqual } from "node:crypto"
import { createServer } from "node:http"
import pg from "pg"
import type { Connection } from "../../src/domain/Connection.js"
import { type PlatformStatus, platformStatus } from "../../src/integrations/status.js"

const url = process.env["DATABASE_URL"] ?? ""
const port = Number(process.env["PORT"] ?? "0")
const key = createHash("sha256").update(process.env["API_KEYS"] ?? "").digest()
const pool = new pg.Pool({ connectionString: url, max: 20 })

/** The seeded rows' key id, which the service is given too (bench/status/run.ts). */
const knowsKey = (keyId: string) => keyId === "k1"

const platforms = [
  { key: "gsc", displayName: "Google Search Console", configured: true },
  { key: "bing", displayName: "Bing Webmaster Tools", configured: true },
  { key: "wordpress", displayName: "WordPress.com", configured: false },
  { key: "wix", displayName: "Wix", configured: false }
]

const query = `select id, user_id, platform, account_id, status, key_id, token_type, scope, expires_at, provider_data,
  refresh_failures, last_refresh_error, last_refreshed_at, next_attempt_at, lease_until, invalid_grant_streak,
  last_validated_at, expiry_warned_at, created_at, updated_at, (refresh_token is not null) as has_refresh_token
  from oauth_connections where user_id = $1 order by platform, account_id`

interface Row {
  readonly id: string
  readonly user_id: string
  readonly platform: string
  readonly account_id: string
  readonly status: Connection["status"]
  readonly key_id: string | null
  readonly token_type: string | null
  readonly scope: string | null
  readonly expires_at: Date | null
  readonly provider_data: Record<string, unknown>
  readonly refresh_failures: number
  readonly last_refresh_error: string | null
  readonly last_refreshed_at: Date | null
  readonly next_attempt_at: Date | null
  readonly lease_until: Date | null
  readonly invalid_grant_streak: number
  readonly last_validated_at: Date | null
  readonly expiry_warned_at: Date | null
  readonly created_at: Date
  readonly updated_at: Date
  readonly has_refresh_token: boolean
}

const toConnection = (r: Row): Connection => ({
  id: r.id,
  userId: r.user_id,
  platform: r.platform,
  accountId: r.account_id,
  status: r.status,
  keyId: r.key_id,
  hasRefreshToken: r.has_refresh_token,
  tokenType: r.token_type,
  scope: r.scope,
  expiresAt: r.expires_at,
  providerData: r.provider_data,
  refreshFailures: r.refresh_failures,
  lastRefreshError: r.last_refresh_error,
  lastRefreshedAt: r.last_refreshed_at,
  nextAttemptAt: r.next_attempt_at,
  leaseUntil: r.lease_until,
  invalidGrantStreak: r.invalid_grant_streak,
  lastValidatedAt: r.last_validated_at,
  expiryWarnedAt: r.expiry_warned_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at
})

const iso = (d: Date | null) => (d === null ? null : d.toISOString())

/** The service's JSON for a status, written out by hand (the service encodes it with its schema). */
const connectionStatusJson = (s: PlatformStatus) => ({
  platform: s.platform,
  display_name: s.displayName,
  configured: s.configured,
  connected: s.connected,
  status: s.status,
  accounts: s.accounts.map((a) => ({
    account_id: a.accountId,
    connected: a.connected,
    status: a.status,
    expires_at: iso(a.expiresAt),
    scope: a.scope,
    connected_at: a.connectedAt.toISOString(),
    last_refreshed_at: iso(a.lastRefreshedAt),
    last_error: a.lastError,
    provider_data: a.providerData
  })),
  details: s.details,
  error: s.error,
  degraded: s.degraded,
  degraded_reason: s.degradedReason
})

const route = /^\/v1\/users\/([A-Za-z0-9._:@|+-]{1,200})\/connections$/

createServer(async (req, res) => {
  const match = route.exec(req.url ?? "")
  const auth = req.headers.authorization ?? ""
  const presented = createHash("sha256").update(auth.startsWith("Bearer ") ? auth.slice(7) : "").digest()
  if (!timingSafeEqual(presented, key)) {
    res.writeHead(401).end()
    return
  }
  if (match === null || match[1] === undefined) {
    res.writeHead(404).end()
    return
  }
  const userId = match[1]
  const { rows } = await pool.query<Row>(query, [userId])
  const connections = rows.map(toConnection)
  const now = new Date()
  const body = JSON.stringify({
    user_id: userId,
    connections: platforms.map((p) => connectionStatusJson(platformStatus(p, connections.filter((c) => c.platform === p.key), now, knowsKey)))
  })
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body)
}).listen(port, "127.0.0.1")
