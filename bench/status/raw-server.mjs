// The baseline: node:http and a pg pool answering GET /v1/users/:id/connections with the
// same query, the same JSON and the same headers as the service, and nothing else (no
// framework, no cache). Plain JavaScript, run by node itself (its memory is measured): the
// status rule is the service's own, from dist/ (built by the benchmark's npm script).
import { createHash, timingSafeEqual } from "node:crypto"
import { createServer } from "node:http"
import pg from "pg"
import { platformStatus } from "../../dist/status/status.js"

const url = process.env["DATABASE_URL"] ?? ""
const port = Number(process.env["PORT"] ?? "0")
const key = createHash("sha256").update(process.env["API_KEYS"] ?? "").digest()
const pool = new pg.Pool({ connectionString: url, max: 20 })

/** The seeded rows' key id, which the service is given too (bench/status/run.ts). */
const knowsKey = (keyId) => keyId === "k1"

const platforms = [
  { key: "gsc", displayName: "Google Search Console", configured: true },
  { key: "bing", displayName: "Bing Webmaster Tools", configured: true },
  { key: "wordpress", displayName: "WordPress.com", configured: false },
  { key: "wix", displayName: "Wix", configured: false }
]

const query = `select id, user_id, platform, account_id, status, key_id, token_type, scope, expires_at, provider_data,
  refresh_failures, last_refresh_error, last_refreshed_at, next_attempt_at, lease_until, invalid_grant_streak,
  last_validated_at, expiry_warned_at, unverified, created_at, updated_at, (refresh_token is not null) as has_refresh_token
  from oauth_connections where user_id = $1 order by platform, account_id`

const toConnection = (r) => ({
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
  unverified: r.unverified,
  createdAt: r.created_at,
  updatedAt: r.updated_at
})

const iso = (d) => (d === null ? null : d.toISOString())

/** The service's JSON for a status, written out by hand (the service encodes it with its schema). */
const connectionStatusJson = (s) => ({
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
  const { rows } = await pool.query(query, [userId])
  const connections = rows.map(toConnection)
  const now = new Date()
  const body = JSON.stringify({
    user_id: userId,
    connections: platforms.map((p) => connectionStatusJson(platformStatus(p, connections.filter((c) => c.platform === p.key), now, knowsKey)))
  })
  res.writeHead(200, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
    "x-content-type-options": "nosniff"
  }).end(body)
}).listen(port, "127.0.0.1")
