// The baseline of `npm run bench:monitor`: one monitor pass written as plain Node.js, with no
// framework — pg, undici and node:crypto — doing the service's work: the service's own claim
// and store statements (compiled by the benchmark and passed in), the refresh token decrypted
// and the new tokens sealed in the service's format, MONITOR_CONCURRENCY requests in flight,
// results stored up to 100 to a statement (each worker's next request waiting for its last
// result to be stored, as the service's do), the next batch claimed before the last one runs dry, one NOTIFY per stored batch. No retries, no circuit breaker,
// no metrics, no logs: what the machine does for this work with nothing else.
// Prints {"refreshed", "failed", "durationMs"} as one JSON line.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto"
import pg from "pg"
import { Agent } from "undici"

const env = (name) => {
  const value = process.env[name]
  if (value === undefined || value === "") throw new Error(`${name} is not set`)
  return value
}

const concurrency = Number(env("RAW_CONCURRENCY"))
const batch = Number(env("RAW_BATCH"))
const keyId = env("RAW_KEY_ID")
const key = Buffer.from(env("RAW_KEY"), "base64")
const tokenUrl = new URL(env("RAW_TOKEN_URL"))
const clientId = env("RAW_CLIENT_ID")
const clientSecret = env("RAW_CLIENT_SECRET")
const claimSql = env("RAW_CLAIM_SQL")
/** The claim's parameters by role, in order: owner, now, horizon, leaseUntil, limit, keyIds. */
const claimRoles = JSON.parse(env("RAW_CLAIM_ROLES"))
const storeSql = env("RAW_STORE_SQL")
const channel = env("RAW_CHANNEL")

const pool = new pg.Pool({ connectionString: env("DATABASE_URL"), max: 10 })
const agent = new Agent()
const owner = `raw:${randomBytes(8).toString("hex")}`

const aad = (row, field) => Buffer.from(["oauth-integrations/v1", row.key_id, "connection", row.user_id, row.platform, row.account_id, field].join("\u0000"), "utf8")

const open = (row, field, bytes) => {
  const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(1, 13))
  decipher.setAAD(aad(row, field))
  decipher.setAuthTag(bytes.subarray(13, 29))
  return Buffer.concat([decipher.update(bytes.subarray(29)), decipher.final()]).toString("utf8")
}

const seal = (row, field, plaintext) => {
  const iv = randomBytes(12)
  const cipher = createCipheriv("aes-256-gcm", key, iv)
  cipher.setAAD(aad({ ...row, key_id: keyId }, field))
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()])
  return Buffer.concat([Buffer.of(1), iv, cipher.getAuthTag(), body])
}

const refresh = (refreshToken) =>
  new Promise((resolve, reject) => {
    const chunks = []
    let status = 0
    agent.dispatch({
      origin: tokenUrl.origin,
      path: tokenUrl.pathname + tokenUrl.search,
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: clientId, client_secret: clientSecret }).toString()
    }, {
      onRequestStart() {},
      onResponseStart(_, statusCode) {
        status = statusCode
      },
      onResponseData(_, chunk) {
        chunks.push(chunk)
      },
      onResponseEnd() {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8"))
        if (status !== 200 || typeof body.access_token !== "string") reject(new Error(`HTTP ${status}`))
        else resolve(body)
      },
      onResponseError(_, error) {
        reject(error)
      }
    })
  })

// Rows claimed and not yet handed out; the next claim starts when fewer than `concurrency` are left.
let rows = []
let dry = false
let claiming
const claim = async () => {
  const now = Date.now()
  const values = { owner, now: new Date(now), horizon: new Date(now + 10 * 60_000), leaseUntil: new Date(now + 2 * 60_000), limit: batch, keyIds: [keyId] }
  const { rows: got } = await pool.query(claimSql, claimRoles.map((role) => values[role]))
  rows = rows.concat(got)
  if (got.length < batch) dry = true
}
const claimMore = () => {
  claiming ??= claim().finally(() => {
    claiming = undefined
  })
  return claiming
}
const next = async () => {
  for (;;) {
    if (rows.length > 0) {
      const row = rows.shift()
      if (rows.length < concurrency && !dry) void claimMore()
      return row
    }
    if (dry) return undefined
    await claimMore()
  }
}

// Results stored 100 to a statement, one statement at a time, with one NOTIFY each; each
// worker waits for its result's statement before its next request.
const pending = []
let storing
let refreshed = 0
let failed = 0
const store = async () => {
  while (pending.length > 0) {
    const results = pending.splice(0, 100)
    const column = (f) => results.map(f)
    const { rows: stored } = await pool.query(storeSql, [
      column((r) => r.id), column((r) => r.owner), column((r) => r.access), column((r) => r.keyId), column((r) => r.refresh),
      column((r) => r.mode), column((r) => r.tokenType), column((r) => r.scope), column((r) => r.expiresAt), column((r) => r.at),
      column((r) => r.events)
    ])
    refreshed += stored.length
    for (const r of results) r.stored()
    await pool.query("select pg_notify($1, $2)", [channel, JSON.stringify(results.map((r) => [r.userId, r.platform]))])
  }
}
const storeSoon = () => {
  storing ??= store().finally(() => {
    storing = undefined
    if (pending.length > 0) storeSoon()
  })
}

const worker = async () => {
  for (let row = await next(); row !== undefined; row = await next()) {
    try {
      const grant = await refresh(open(row, "refresh_token", row.sealed_refresh_token))
      const at = new Date()
      let stored
      const done = new Promise((resolve) => {
        stored = resolve
      })
      pending.push({
        stored,
        id: row.id,
        userId: row.user_id,
        platform: row.platform,
        owner,
        access: seal(row, "access_token", grant.access_token),
        keyId,
        refresh: typeof grant.refresh_token === "string" ? seal(row, "refresh_token", grant.refresh_token) : null,
        mode: typeof grant.refresh_token === "string" ? "set" : "keep",
        tokenType: grant.token_type ?? null,
        scope: grant.scope ?? null,
        expiresAt: typeof grant.expires_in === "number" ? new Date(at.getTime() + grant.expires_in * 1000) : null,
        at,
        events: JSON.stringify([{ kind: "refreshed", detail: { rotated: typeof grant.refresh_token === "string" } }])
      })
      storeSoon()
      // As the service does: the next request waits until this answer is stored, so that a
      // process killed holds at most `concurrency` answers unstored.
      await done
    } catch {
      failed++
    }
  }
}

const started = performance.now()
await Promise.all(Array.from({ length: concurrency }, worker))
while (storing !== undefined) await storing
const durationMs = performance.now() - started
await pool.end()
await agent.close()
process.stdout.write(`${JSON.stringify({ refreshed, failed, durationMs })}\n`)
