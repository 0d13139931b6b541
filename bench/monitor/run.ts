// The token monitor at scale. `npm run bench:monitor`.
// 1. 10,000 due connections against a fake token endpoint answering in 20 ms on loopback:
//    refreshes per second against the ideal (concurrency / latency), at concurrency 16 and 64,
//    and the monitor process's peak RSS.
// 2. 1,000,000 connections of which 1 % are due: time of one claim statement per batch, the
//    plan of the claim (the partial index on expires_at must be used), and the peak RSS of a
//    monitor pass over that table.
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { Duration, Effect, Layer, Redacted } from "effect"
import * as SqlClient from "@effect/sql/SqlClient"
import pg from "pg"
import { makeCipher, TokenCipher } from "../../src/crypto/TokenCipher.js"
import { claimDueRefreshesStatement, ConnectionRepository } from "../../src/db/ConnectionRepository.js"
import { pgClientLayer } from "../../src/db/Database.js"
import { seedDueConnections } from "../../test/support/connections.js"
import { startFakeBing } from "../../test/support/platforms/index.js"
import type { FakeOAuthPlatform } from "../../test/support/platforms/index.js"
import { type BenchDatabase, cpuSeconds, peakRssMiB, startDatabase } from "../shared/database.js"

const LATENCY_MS = 20
const DUE = Number(process.env["BENCH_DUE"] ?? "10000")
const LARGE = Number(process.env["BENCH_LARGE"] ?? "1000000")
const CONCURRENCIES = (process.env["BENCH_CONCURRENCY"] ?? "16,64").split(",").map(Number)
const keyMaterial = randomBytes(32)
const KEYS = `bench:${keyMaterial.toString("base64")}`
const cipher = makeCipher([{ id: "bench", key: Redacted.make(new Uint8Array(keyMaterial)) }])

const progress = (message: string) => process.stderr.write(`[bench:monitor] ${message}\n`)

const pool = { maxConnections: 10, connectTimeout: Duration.seconds(10), idleTimeout: Duration.seconds(30), connectionTtl: Duration.hours(1) }

/** `count` Bing connections whose refresh tokens the fake knows, expiring within a minute. */
const seedDue = (url: string, fake: FakeOAuthPlatform, count: number, prefix: string) =>
  Effect.runPromise(
    seedDueConnections(fake, "bing", Array.from({ length: count }, (_, i) => `${prefix}-${i}`)).pipe(
      Effect.provide(ConnectionRepository.DefaultWithoutDependencies.pipe(
        Layer.provide(Layer.succeed(TokenCipher, TokenCipher.make(cipher))),
        Layer.provide(pgClientLayer(Redacted.make(url), pool))
      ))
    )
  )

interface Pass {
  readonly durationMs: number
  readonly refreshed: number
  readonly failed: number
  readonly peakRssMiB: number
  /** CPU time of the monitor process, start-up included. */
  readonly cpuSeconds: number
}

/** `monitor --once` as its own process; its tick report comes from its JSON log line. */
const monitorPass = (db: BenchDatabase, fake: FakeOAuthPlatform, concurrency: number, nodeOptions = process.env["BENCH_MONITOR_NODE_OPTIONS"] ?? "") =>
  new Promise<Pass>((resolve, reject) => {
    const profile = process.env["BENCH_CPU_PROFILE_DIR"]
    const child = spawn("node", [...(profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}`]), "dist/main.js", "monitor", "--once"], {
      env: {
        ...process.env,
        ...fake.env("http://localhost:3000/oauth/bing/callback"),
        DATABASE_URL: db.url,
        TOKEN_ENCRYPTION_KEYS: KEYS,
        API_KEYS: "bench-api-key-0123456789",
        FRONTEND_URL: "http://localhost:3000",
        LOG_FORMAT: "json",
        LOG_LEVEL: "info",
        MONITOR_CONCURRENCY: String(concurrency),
        NODE_OPTIONS: nodeOptions,
        BING_TIMEOUT: "30s"
      },
      stdio: ["ignore", "pipe", "inherit"]
    })
    // VmHWM only grows: its last reading before the exit is the peak.
    let peak = 0
    let cpu = 0
    const sampler = setInterval(() => {
      try {
        const reading = peakRssMiB(child.pid ?? 0)
        if (Number.isFinite(reading)) peak = Math.max(peak, reading)
        cpu = cpuSeconds(child.pid ?? 0)
      } catch {
        // exited
      }
    }, 20)
    let out = ""
    child.stdout.on("data", (c: Buffer) => { out += c.toString() })
    child.on("exit", () => {
      clearInterval(sampler)
      const tick = out.split("\n").filter((l) => l.includes("\"monitor tick\"")).map((l) => JSON.parse(l) as { annotations: Record<string, number> })[0]
      if (tick === undefined) return reject(new Error(`no tick report:\n${out}`))
      resolve({
        durationMs: tick.annotations["duration_ms"] ?? Number.NaN,
        refreshed: tick.annotations["refreshed"] ?? Number.NaN,
        failed: tick.annotations["failed"] ?? Number.NaN,
        peakRssMiB: peak,
        cpuSeconds: cpu
      })
    })
  })

const throughput = async (db: BenchDatabase) => {
  const rows: Array<string> = []
  for (const concurrency of CONCURRENCIES) {
    const fake = await startFakeBing({ latencyMs: LATENCY_MS })
    progress(`seeding ${DUE} due connections`)
    const client = new pg.Client({ connectionString: db.url })
    await client.connect()
    await client.query("truncate oauth_connections cascade")
    await client.end()
    await seedDue(db.url, fake, DUE, `c${concurrency}`)
    progress(`one monitor pass at concurrency ${concurrency}`)
    const pass = await monitorPass(db, fake, concurrency)
    await fake.close()
    const rate = pass.refreshed / (pass.durationMs / 1000)
    const ideal = concurrency / (LATENCY_MS / 1000)
    rows.push(`| ${concurrency} | ${pass.refreshed} | ${pass.failed} | ${(pass.durationMs / 1000).toFixed(1)} | ${rate.toFixed(0)} | ${ideal.toFixed(0)} | ${(100 * rate / ideal).toFixed(0)} % | ${pass.peakRssMiB.toFixed(0)} | ${(1000 * pass.cpuSeconds / pass.refreshed).toFixed(2)} |`)
  }
  return [
    `${DUE} due connections, fake token endpoint answering in ${LATENCY_MS} ms (rotating refresh tokens), one \`monitor --once\` process:`,
    "",
    "| concurrency | refreshed | failed | seconds | refreshes/s | ideal/s | of ideal | peak RSS MiB | monitor CPU ms per refresh |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows
  ]
}

const claims = async (db: BenchDatabase) => {
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  await client.query("truncate oauth_connections cascade")
  const due = Math.round(LARGE / 100)
  progress(`seeding ${LARGE} connections, ${due} due`)
  await client.query(`
    insert into oauth_connections (user_id, platform, account_id, status, access_token, refresh_token, key_id, expires_at,
      created_at, updated_at)
    select 'big-' || i, 'bing', '', case when i % 50 = 0 then 'needs_reauth' else 'active' end,
      '\\x00'::bytea, '\\x00'::bytea, 'bench',
      case when i <= ${due} then now() + interval '1 minute' else now() + interval '1 hour' + (i % 1000) * interval '1 minute' end,
      now(), now()
    from generate_series(1, ${LARGE}) i`)
  await client.query("analyze oauth_connections")
  // The monitor's own claim statement, as the repository compiles it, with its parameters.
  const now = new Date()
  const [claim, params] = await Effect.runPromise(
    Effect.map(SqlClient.SqlClient, (sql) =>
      claimDueRefreshesStatement(sql, {
        owner: "bench",
        now,
        horizon: new Date(now.getTime() + 10 * 60_000),
        leaseUntil: new Date(now.getTime() + 2 * 60_000),
        limit: 500
      }).compile()).pipe(Effect.provide(pgClientLayer(Redacted.make(db.url), pool)), Effect.scoped)
  )
  const plan = (await client.query<{ "QUERY PLAN": string }>(`explain ${claim}`, [...params])).rows.map((r) => r["QUERY PLAN"])
  const times: Array<number> = []
  let claimed = 0
  for (;;) {
    const t = performance.now()
    const { rowCount } = await client.query(claim, [...params])
    times.push(performance.now() - t)
    claimed += rowCount ?? 0
    if ((rowCount ?? 0) < 500) break
  }
  await client.query("update oauth_connections set lease_until = null, lease_owner = null")
  await client.end()
  const sorted = [...times].sort((a, b) => a - b)
  const usesIndex = plan.some((l) => l.includes("oauth_connections_active_expiry"))
  return [
    `${LARGE} connections (${due} due), claims of 500 with FOR UPDATE SKIP LOCKED: ${times.length} claims took ${claimed} rows;` +
      ` per claim mean ${(times.reduce((a, b) => a + b, 0) / times.length).toFixed(1)} ms, median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(1)} ms,` +
      ` max ${sorted.at(-1)?.toFixed(1)} ms. Partial index used: ${usesIndex ? "yes" : "NO"}.`,
    "",
    "```",
    ...plan,
    "```"
  ]
}

const largePass = async (db: BenchDatabase) => {
  const fake = await startFakeBing({ latencyMs: LATENCY_MS })
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  // The due rows get real, refreshable tokens; the rest stay as they are.
  await client.query("delete from oauth_connections where user_id like 'big-%' and expires_at < now() + interval '10 minutes'")
  await client.end()
  progress(`replacing the due rows with ${Math.round(LARGE / 100)} refreshable connections`)
  await seedDue(db.url, fake, Math.round(LARGE / 100), "large")
  progress("one monitor pass over the large table, as `npm run monitor` runs it (--max-old-space-size=128)")
  const pass = await monitorPass(db, fake, 64, "--max-old-space-size=128")
  await fake.close()
  return [
    `A \`monitor --once\` pass over the ${LARGE}-row table (concurrency 64, \`--max-old-space-size=128\` as in \`npm run monitor\`):` +
      ` refreshed ${pass.refreshed}, failed ${pass.failed}, ${(pass.durationMs / 1000).toFixed(1)} s, peak RSS ${pass.peakRssMiB.toFixed(0)} MiB (target < 200 MiB).`
  ]
}

const main = async () => {
  progress("starting PostgreSQL and migrating")
  const db = await startDatabase()
  try {
    const lines = [
      `PostgreSQL: ${db.server}`,
      "",
      ...(await throughput(db)),
      "",
      ...(await claims(db)),
      "",
      ...(await largePass(db))
    ]
    process.stdout.write(lines.join("\n") + "\n")
  } finally {
    await db.stop()
  }
}

// Top-level await: the runner ends the process when the module has been evaluated.
await main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`)
  process.exit(1)
})
