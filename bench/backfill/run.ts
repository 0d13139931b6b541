// bench:backfill — `backfill` bringing 100,000 legacy rows (25,000 in each of the four legacy
// tables, half of the WordPress.com and Wix tokens Fernet-encrypted) into PostgreSQL, against
// a baseline in the same run (bench/backfill/raw-backfill.mjs) that inserts the same sealed
// rows with plain pg in batches. Both are whole processes, start-up included, loaded in
// alternating rounds into an emptied table; rows/s, the ratio and peak RSS are reported.
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Database from "better-sqlite3"
import pg from "pg"
import { Either } from "effect"
import { fernetEncrypt, parseFernetKey } from "../../src/crypto/fernet.js"
import { peakRssMiB, startDatabase } from "../shared/database.js"

const PER_TABLE = Number(process.env["BENCH_ROWS_PER_TABLE"] ?? "25000")
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? "3")
/** What `npm run backfill` gives node (package.json): the service runs as users run it. */
const SERVICE_NODE_OPTIONS = ["--max-old-space-size=128"]
/** A directory for the service's CPU profiles (node --cpu-prof), when set. */
const PROFILE = process.env["BENCH_CPU_PROFILE_DIR"]
const KEYS = `bench:${randomBytes(32).toString("base64")}`
const FERNET_TEXT = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
const fernetKey = Either.getOrThrow(parseFernetKey(FERNET_TEXT))

const log = (line: string) => process.stderr.write(`[bench:backfill] ${line}\n`)
const token = (prefix: string) => `${prefix}-${randomBytes(24).toString("base64url")}`

/** The legacy database: the legacy DDL, PER_TABLE rows in each table. */
const writeLegacy = (file: string) => {
  const db = new Database(file)
  db.exec(`
    create table gsc_credentials (user_id TEXT PRIMARY KEY, credentials_json TEXT NOT NULL, created_at TIMESTAMP, updated_at TIMESTAMP);
    create table bing_oauth_tokens (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, access_token TEXT NOT NULL, refresh_token TEXT,
      token_type TEXT DEFAULT 'bearer', expires_at TIMESTAMP, scope TEXT, site_url TEXT, created_at TIMESTAMP, updated_at TIMESTAMP, is_active BOOLEAN DEFAULT TRUE);
    create table wordpress_oauth_tokens (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, access_token TEXT NOT NULL, refresh_token TEXT,
      token_type TEXT DEFAULT 'bearer', expires_at TIMESTAMP, scope TEXT, blog_id TEXT, blog_url TEXT, created_at TIMESTAMP, updated_at TIMESTAMP, is_active BOOLEAN DEFAULT TRUE);
    create table wix_oauth_tokens (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, access_token TEXT NOT NULL, refresh_token TEXT,
      token_type TEXT DEFAULT 'bearer', expires_at TIMESTAMP, expires_in INTEGER, scope TEXT, site_id TEXT, member_id TEXT, created_at TIMESTAMP, updated_at TIMESTAMP, is_active BOOLEAN DEFAULT TRUE);
  `)
  const iv = randomBytes(16)
  const maybeFernet = (i: number, value: string) => (i % 2 === 0 ? fernetEncrypt(fernetKey, value, 1_700_000_000, iv) : value)
  const at = "2025-01-15 10:30:00"
  const gsc = db.prepare("insert into gsc_credentials values (?, ?, ?, ?)")
  const bing = db.prepare("insert into bing_oauth_tokens (user_id, access_token, refresh_token, expires_at, scope, site_url, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?)")
  const wp = db.prepare("insert into wordpress_oauth_tokens (user_id, access_token, expires_at, blog_id, blog_url, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?)")
  const wix = db.prepare("insert into wix_oauth_tokens (user_id, access_token, refresh_token, expires_at, site_id, member_id, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?)")
  db.transaction(() => {
    for (let i = 0; i < PER_TABLE; i++) {
      const user = `user-${i}`
      gsc.run(user, JSON.stringify({ token: token("ya29"), refresh_token: token("1//g"), token_uri: "https://oauth2.googleapis.com/token", client_id: "c", client_secret: "s", scopes: ["https://www.googleapis.com/auth/webmasters.readonly"] }), at, at)
      bing.run(user, token("bing-at"), token("bing-rt"), "2025-01-15 11:30:00", "webmaster.manage", `https://site-${i}.example`, at, at)
      wp.run(user, maybeFernet(i, token("wp")), "2025-01-29 10:30:00", String(1000 + i), `https://blog-${i}.example`, at, at)
      wix.run(user, maybeFernet(i, token("wix-at")), maybeFernet(i, token("wix-rt")), "2025-01-15 14:30:00", `site-${i}`, `member-${i}`, at, at)
    }
  })()
  db.close()
}

interface Run {
  readonly seconds: number
  readonly rssMiB: number
  readonly rows: number
}

/** Runs a process to its end, sampling its peak RSS; the rows it stored are counted after. */
const timed = (command: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv, count: () => Promise<number>) =>
  new Promise<Run>((resolve, reject) => {
    const started = performance.now()
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] })
    let peak = 0
    let err = ""
    const timer = setInterval(() => {
      try {
        const reading = peakRssMiB(child.pid ?? 0)
        if (Number.isFinite(reading)) peak = Math.max(peak, reading)
      } catch {
        // exited
      }
    }, 20)
    child.stdout.resume()
    child.stderr.on("data", (d: Buffer) => void (err += d.toString()))
    child.on("exit", (code) => {
      clearInterval(timer)
      const seconds = (performance.now() - started) / 1000
      if (code !== 0) return reject(new Error(`${command} ${args.join(" ")} exited ${code}: ${err.slice(-2000)}`))
      count().then((rows) => resolve({ seconds, rssMiB: peak, rows }), reject)
    })
  })

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN

const main = async () => {
  const dir = mkdtempSync(join(tmpdir(), "oi-bench-backfill-"))
  const file = join(dir, "alwrity.db")
  log(`writing the legacy database: ${PER_TABLE * 4} rows`)
  writeLegacy(file)
  log("starting PostgreSQL and migrating")
  const db = await startDatabase()
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  const empty = async () => void (await client.query("truncate oauth_connections, oauth_events"))
  const count = async () => Number((await client.query("select count(*)::int as n from oauth_connections")).rows[0].n)
  const env = {
    ...process.env,
    DATABASE_URL: db.url,
    TOKEN_ENCRYPTION_KEYS: KEYS,
    OAUTH_TOKEN_ENCRYPTION_KEY: FERNET_TEXT,
    LOG_LEVEL: "error"
  }
  const runs = { service: [] as Array<Run>, baseline: [] as Array<Run> }
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 === 1 ? (["service", "baseline"] as const) : (["baseline", "service"] as const)
      for (const who of order) {
        await empty()
        log(`round ${round}/${ROUNDS}: ${who}`)
        const run = who === "service"
          ? await timed("node", [...(PROFILE === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${PROFILE}`]), ...SERVICE_NODE_OPTIONS, "dist/main.js", "backfill", file], env, count)
          : await timed("node", ["bench/backfill/raw-backfill.mjs", file], env, count)
        if (run.rows !== PER_TABLE * 4) throw new Error(`${who} stored ${run.rows} rows, not ${PER_TABLE * 4}`)
        runs[who].push(run)
      }
    }
  } finally {
    await client.end()
    await db.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  const rate = (r: Run) => r.rows / r.seconds
  const base = median(runs.baseline.map(rate))
  const line = (name: string, rs: ReadonlyArray<Run>) =>
    `| ${name} | ${Math.round(median(rs.map(rate)))} | ${(median(rs.map(rate)) / base).toFixed(2)} | ${rs.map((r) => Math.round(rate(r))).join(" / ")} | ${median(rs.map((r) => r.seconds)).toFixed(1)} | ${Math.round(Math.max(...rs.map((r) => r.rssMiB)))} |`
  console.log(`${PER_TABLE * 4} legacy rows (${PER_TABLE} per table; half of the WordPress.com and Wix tokens Fernet-encrypted), ${ROUNDS} alternating rounds, medians; PostgreSQL: ${db.server}\n`)
  console.log("| importer | rows/s | × baseline | each round | seconds | peak RSS MiB |")
  console.log("|---|---:|---:|---|---:|---:|")
  console.log(line("baseline (better-sqlite3 + pg, batches of 500)", runs.baseline))
  console.log(line("service (`backfill`)", runs.service))
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
