// The baseline: the same legacy SQLite rows read with better-sqlite3, their Fernet values
// opened and their tokens sealed with the service's own code (from dist/), inserted with plain
// pg in batches of 500: no framework, no idempotency check, no events. Plain JavaScript, run
// by node itself (its memory is measured).
import Database from "better-sqlite3"
import pg from "pg"
import { Redacted } from "effect"
import { connectionContext, makeCipher } from "../../dist/crypto/TokenCipher.js"
import { fernetDecrypt, looksLikeFernet, parseFernetKey } from "../../dist/crypto/fernet.js"

const [file] = process.argv.slice(2)
const [keyId, keyB64] = (process.env["TOKEN_ENCRYPTION_KEYS"] ?? "").split(":")
const cipher = makeCipher([{ id: keyId, key: Redacted.make(Buffer.from(keyB64, "base64")) }])
const fernet = [parseFernetKey(process.env["OAUTH_TOKEN_ENCRYPTION_KEY"] ?? "").right]
const client = new pg.Client({ connectionString: process.env["DATABASE_URL"] })
await client.connect()
const db = new Database(file, { readonly: true })

const open = (value) => {
  if (value === null || value === undefined || value === "") return null
  if (!looksLikeFernet(value)) return value
  const plain = fernetDecrypt(value, fernet)
  return plain._tag === "Right" ? plain.right : null
}
const seal = (identity, field, token) => token === null ? null : Buffer.from(cipher.unsafeSeal(Redacted.make(token), connectionContext(identity, field)).bytes)
const time = (v) => (v === null || v === undefined ? null : new Date(`${String(v).replace(" ", "T")}Z`))

let batch = []
let written = 0
const flush = async () => {
  if (batch.length === 0) return
  const col = (f) => batch.map(f)
  await client.query(
    `insert into oauth_connections (user_id, platform, account_id, status, access_token, refresh_token, key_id, token_type, scope,
       expires_at, provider_data, updated_at)
     select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::bytea[], $7::text[], $8::text[], $9::text[],
       $10::timestamptz[], $11::jsonb[], $12::timestamptz[])`,
    [col((r) => r.userId), col((r) => r.platform), col((r) => r.accountId), col(() => "active"), col((r) => r.access), col((r) => r.refresh),
      col(() => keyId), col((r) => r.tokenType), col((r) => r.scope), col((r) => r.expiresAt), col((r) => JSON.stringify(r.providerData)),
      col((r) => r.updatedAt)]
  )
  written += batch.length
  batch = []
}

const tables = [
  ["gsc_credentials", "gsc", (r) => {
    const c = JSON.parse(r.credentials_json)
    return { accountId: "", access: c.token ?? null, refresh: c.refresh_token ?? null, tokenType: "Bearer", scope: (c.scopes ?? []).join(" "), expiresAt: null, providerData: {} }
  }],
  ["bing_oauth_tokens", "bing", (r) => ({ accountId: "", access: r.access_token, refresh: r.refresh_token, tokenType: r.token_type, scope: r.scope, expiresAt: time(r.expires_at), providerData: { sites: [{ url: r.site_url, verified: null }] } })],
  ["wordpress_oauth_tokens", "wordpress", (r) => ({ accountId: r.blog_id ?? "", access: open(r.access_token), refresh: null, tokenType: r.token_type, scope: r.scope, expiresAt: null, providerData: { blog_id: Number(r.blog_id), blog_url: r.blog_url } })],
  ["wix_oauth_tokens", "wix", (r) => ({ accountId: "", access: open(r.access_token), refresh: open(r.refresh_token), tokenType: r.token_type, scope: r.scope, expiresAt: time(r.expires_at), providerData: { site_id: r.site_id, member_id: r.member_id } })]
]

for (const [table, platform, map] of tables) {
  for (const row of db.prepare(`select * from ${table} order by user_id, rowid`).iterate()) {
    const m = map(row)
    const identity = { userId: row.user_id, platform, accountId: m.accountId }
    batch.push({ ...identity, ...m, access: seal(identity, "access_token", m.access), refresh: seal(identity, "refresh_token", m.refresh), updatedAt: time(row.updated_at) ?? new Date() })
    if (batch.length === 500) await flush()
  }
}
await flush()
db.close()
await client.end()
process.stdout.write(`${written}\n`)
