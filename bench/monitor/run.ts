// The token monitor at scale. `npm run bench:monitor`.
// 1. 10,000 due connections against a fake token endpoint answering in 20 ms on loopback
//    (bench/monitor/token-endpoint.mjs, in a process of its own; it rotates refresh tokens):
//    refreshes per second against the ideal (concurrency / latency), at concurrency 16 and 64,
//    for the service's `monitor --once` and for the baseline, the same pass written as plain
//    Node.js (bench/monitor/raw-monitor.mjs), in alternating rounds; CPU per refresh and peak
//    RSS of each process.
// 2. 1,000,000 connections of which 1 % are due: time of one claim statement per batch, the
//    plan of the claim (the partial index on expires_at must be used), and the peak RSS of a
//    monitor pass over that table.
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import * as SqlClient from "@effect/sql/SqlClient"
import pg from "pg"
import { makeCipher, TokenCipher } from "../../src/crypto/TokenCipher.js"
import { ConnectionRepository } from "../../src/db/ConnectionRepository.js"
import { claimDueRefreshesStatement, storeRefreshesStatement } from "../../src/db/monitorQueries.js"
import { pgClientLayer } from "../../src/db/Database.js"
import { CHANNEL } from "../../src/status/StatusChanges.js"
import { type BenchDatabase, cpuSeconds, machineTicks, peakRssMiB, startDatabase } from "../shared/database.js"

const LATENCY_MS = 20
const DUE = Number(process.env["BENCH_DUE"] ?? "10000")
const LARGE = Number(process.env["BENCH_LARGE"] ?? "1000000")
const CONCURRENCIES = (process.env["BENCH_CONCURRENCY"] ?? "16,64").split(",").map(Number)
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? "3")
const BATCH = Number(process.env["BENCH_BATCH"] ?? "500")

/**
 * Another build of the service (a checkout with its dist/ built, e.g. an earlier commit), run
 * as a daemon in the same alternating rounds: a before/after comparison on one machine in one
 * run, where this machine's drift between runs would otherwise swamp it.
 */
const COMPARE_WITH = process.env["BENCH_COMPARE_WITH"]

type Monitor = "daemon" | "once" | "baseline" | "compared"
const MONITORS: ReadonlyArray<Monitor> = COMPARE_WITH === undefined ? ["daemon", "once", "baseline"] : ["daemon", "compared", "once", "baseline"]
const labels: Record<Monitor, string> = {
  daemon: "service, daemon (`monitor`, a warm tick)",
  once: "service, `monitor --once` (a cold process)",
  baseline: "baseline (plain Node.js)",
  compared: `compared build (${COMPARE_WITH ?? ""}), daemon`
}
const keyMaterial = randomBytes(32)
const KEYS = `bench:${keyMaterial.toString("base64")}`
const cipher = makeCipher([{ id: "bench", key: Redacted.make(new Uint8Array(keyMaterial)) }])

const progress = (message: string) => process.stderr.write(`[bench:monitor] ${message}\n`)

const pool = { maxConnections: 10, connectTimeout: Duration.seconds(10), idleTimeout: Duration.seconds(30), connectionTtl: Duration.hours(1), statementTimeout: Duration.seconds(30) }

/** The fake token endpoint, in a process of its own. */
interface Platform {
  readonly env: Readonly<Record<string, string>>
  readonly tokenUrl: string
  readonly stats: () => Promise<{ readonly refreshes: number; readonly invalidGrants: number; readonly reused: number }>
  readonly close: () => void
}

const startPlatform = async (): Promise<Platform> => {
  const clientId = "bench-client"
  const clientSecret = randomBytes(16).toString("hex")
  const child = spawn("node", ["bench/monitor/token-endpoint.mjs"], {
    env: { ...process.env, LATENCY_MS: String(LATENCY_MS), CLIENT_ID: clientId, CLIENT_SECRET: clientSecret },
    // Its stdin stays open as long as this process lives: the endpoint ends with it.
    stdio: ["pipe", "pipe", "inherit"]
  })
  const port = await new Promise<string>((resolve) => child.stdout.once("data", (d: Buffer) => resolve(d.toString().trim())))
  const origin = `http://127.0.0.1:${port}`
  return {
    tokenUrl: `${origin}/oauth/token`,
    env: {
      BING_CLIENT_ID: clientId,
      BING_CLIENT_SECRET: clientSecret,
      BING_REDIRECT_URI: "http://localhost:3000/oauth/bing/callback",
      BING_AUTHORIZE_URL: `${origin}/oauth/authorize`,
      BING_TOKEN_URL: `${origin}/oauth/token`
    },
    stats: async () => (await fetch(`${origin}/stats`)).json() as Promise<{ refreshes: number; invalidGrants: number; reused: number }>,
    close: () => void child.kill()
  }
}

/** `count` Bing connections with live (never used) refresh tokens, expiring within a minute. */
const seedDue = (url: string, count: number, prefix: string) =>
  Effect.runPromise(
    Effect.flatMap(ConnectionRepository, (repo) =>
      Effect.forEach(Array.from({ length: count }, (_, i) => `${prefix}-${i}`), (userId) =>
        repo.upsert({
          userId,
          platform: "bing",
          accountId: "",
          providerData: {},
          tokens: {
            accessToken: Redacted.make(`seed-at-${randomBytes(24).toString("base64url")}`),
            refreshToken: Option.some(Redacted.make(`seed-rt-${randomBytes(24).toString("base64url")}`)),
            tokenType: "Bearer",
            scope: null,
            expiresAt: new Date(Date.now() + 60_000)
          }
        }, new Date()), { concurrency: 10, discard: true })).pipe(
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
  /** CPU time of the process, start-up included. */
  readonly cpuSeconds: number
  /** Share of the machine's CPU time that was busy while the process ran, all processes together. */
  readonly machineBusy: number
}

type Reported = Omit<Pass, "peakRssMiB" | "cpuSeconds" | "machineBusy">

/**
 * Samples a process every 20 ms until stopped: its peak RSS (VmHWM only grows: its last
 * reading before the exit is the peak), its CPU time, and the machine's busy and total ticks.
 */
const sampling = (pid: number) => {
  let peak = 0
  let cpu = 0
  const machine: Array<{ readonly at: number; readonly busy: number; readonly total: number }> = []
  const sample = () => {
    machine.push({ at: performance.now(), ...machineTicks() })
    try {
      const reading = peakRssMiB(pid)
      if (Number.isFinite(reading)) peak = Math.max(peak, reading)
      cpu = cpuSeconds(pid)
    } catch {
      // exited
    }
  }
  const timer = setInterval(sample, 20)
  sample()
  return {
    stop: () => clearInterval(timer),
    peak: () => peak,
    /** The process's CPU seconds now (while it runs) or at its last sample. */
    cpu: () => {
      try {
        cpu = cpuSeconds(pid)
      } catch {
        // exited
      }
      return cpu
    },
    /** Share of the machine busy over a pass that ended at `endedAt` and lasted `durationMs`. */
    machineBusy: (endedAt: number, durationMs: number) => {
      const from = [...machine].reverse().find((m) => m.at <= endedAt - durationMs) ?? machine[0]
      const to = machine.find((m) => m.at >= endedAt) ?? machine.at(-1)
      return from === undefined || to === undefined ? Number.NaN : (to.busy - from.busy) / Math.max(1, to.total - from.total)
    }
  }
}

/**
 * Runs a process to its end, sampled; `report` reads its pass from what it printed. The
 * machine's busy share is taken over the pass alone: from the moment the process printed its
 * report (`marker`), back by the pass's duration.
 */
const measured = (command: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv, marker: string, report: (out: string) => Reported) =>
  new Promise<Pass>((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "inherit"] })
    const sampler = sampling(child.pid ?? 0)
    let out = ""
    let reportedAt = Number.NaN
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString()
      if (Number.isNaN(reportedAt) && out.includes(marker)) reportedAt = performance.now()
    })
    child.on("exit", () => {
      sampler.stop()
      try {
        const pass = report(out)
        resolve({ ...pass, peakRssMiB: sampler.peak(), cpuSeconds: sampler.cpu(), machineBusy: sampler.machineBusy(reportedAt, pass.durationMs) })
      } catch (error) {
        reject(error)
      }
    })
  })

const monitorEnv = (db: BenchDatabase, platform: Platform, concurrency: number, nodeOptions: string): NodeJS.ProcessEnv => ({
  ...process.env,
  ...platform.env,
  DATABASE_URL: db.url,
  TOKEN_ENCRYPTION_KEYS: KEYS,
  API_KEYS: "bench-api-key-0123456789",
  FRONTEND_URL: "http://localhost:3000",
  LOG_FORMAT: "json",
  LOG_LEVEL: "info",
  MONITOR_CONCURRENCY: String(concurrency),
  MONITOR_BATCH: String(BATCH),
  NODE_OPTIONS: nodeOptions,
  BING_TIMEOUT: "30s"
})

/** The tick reports a monitor printed, in order, from its JSON log lines. */
const tickReports = (out: string): Array<Reported> =>
  out.split("\n").filter((l) => l.includes("\"monitor tick\"")).map((l) => {
    const { annotations } = JSON.parse(l) as { annotations: Record<string, number> }
    return {
      durationMs: annotations["duration_ms"] ?? Number.NaN,
      refreshed: annotations["refreshed"] ?? Number.NaN,
      failed: annotations["failed"] ?? Number.NaN
    }
  })

/** Rows the daemon's first tick refreshes, to warm the process up before the measured tick. */
const WARM_UP = Number(process.env["BENCH_WARM_UP"] ?? "2000")

/**
 * The monitor as it runs for good (`monitor`, a tick every 10 s): its first tick refreshes
 * WARM_UP rows in a cold process; then every row is made due, and the second tick, in the
 * process the first one warmed, is the pass measured. CPU is the process's between the two
 * reports (the wait between the ticks costs next to none).
 */
const daemonPass = async (db: BenchDatabase, platform: Platform, concurrency: number, cwd?: string) => {
  await makeAllDue(db, WARM_UP)
  return new Promise<Pass>((resolve, reject) => {
    const profile = process.env["BENCH_CPU_PROFILE_DIR"]
    const child = spawn("node", [...(profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}/daemon`]), "dist/main.js", "monitor"], {
      env: { ...monitorEnv(db, platform, concurrency, process.env["BENCH_MONITOR_NODE_OPTIONS"] ?? ""), MONITOR_INTERVAL: "10 seconds" },
      stdio: ["ignore", "pipe", "inherit"],
      ...(cwd === undefined ? {} : { cwd })
    })
    const sampler = sampling(child.pid ?? 0)
    let out = ""
    const reportedAt: Array<{ readonly at: number; readonly cpu: number }> = []
    let failure: unknown
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString()
      // Complete lines only: a chunk may end mid-line.
      const ticks = tickReports(out.slice(0, out.lastIndexOf("\n") + 1)).length
      if (ticks > reportedAt.length) {
        reportedAt.push({ at: performance.now(), cpu: sampler.cpu() })
        if (ticks === 1) {
          makeAllDue(db).catch((error: unknown) => {
            failure = error
            child.kill("SIGTERM")
          })
        } else child.kill("SIGTERM")
      }
    })
    child.on("exit", () => {
      sampler.stop()
      const [warm, measuredTick] = tickReports(out)
      const [first, second] = reportedAt
      if (failure !== undefined) return reject(failure)
      if (warm === undefined || measuredTick === undefined || first === undefined || second === undefined) return reject(new Error(`the daemon made fewer than two ticks:\n${out}`))
      if (warm.refreshed !== WARM_UP) return reject(new Error(`the warm-up tick refreshed ${warm.refreshed} rows, not ${WARM_UP}`))
      // Fewer: the warm-up tick ran so long that the measured one began before every row was due again.
      if (measuredTick.refreshed !== DUE) return reject(new Error(`the measured tick refreshed ${measuredTick.refreshed} rows, not ${DUE}: lower BENCH_WARM_UP`))
      resolve({
        ...measuredTick,
        peakRssMiB: sampler.peak(),
        cpuSeconds: second.cpu - first.cpu,
        machineBusy: sampler.machineBusy(second.at, measuredTick.durationMs)
      })
    })
  })
}

/** `monitor --once` as its own process; its tick report comes from its JSON log line. */
const monitorPass = (db: BenchDatabase, platform: Platform, concurrency: number, nodeOptions = process.env["BENCH_MONITOR_NODE_OPTIONS"] ?? "") => {
  const profile = process.env["BENCH_CPU_PROFILE_DIR"]
  return measured(
    "node",
    [...(profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}`]), "dist/main.js", "monitor", "--once"],
    monitorEnv(db, platform, concurrency, nodeOptions),
    "\"monitor tick\"",
    (out) => {
      const [tick] = tickReports(out)
      if (tick === undefined) throw new Error(`no tick report:\n${out}`)
      return tick
    }
  )
}

/** The baseline's pass, with the service's own claim and store statements. */
const rawPass = async (db: BenchDatabase, platform: Platform, concurrency: number) => {
  const owner = "\u0000owner"
  const [now, horizon, leaseUntil] = [new Date(1), new Date(2), new Date(3)]
  const [[claimSql, claimParams], [storeSql]] = await Effect.runPromise(
    Effect.map(SqlClient.SqlClient, (sql) => [
      claimDueRefreshesStatement(sql, { owner, now, horizon, leaseUntil, limit: BATCH, keyIds: cipher.keyIds }).compile(),
      storeRefreshesStatement(sql, []).compile()
    ] as const).pipe(Effect.provide(pgClientLayer(Redacted.make(db.url), pool)), Effect.scoped)
  )
  const roles = claimParams.map((p) =>
    p === owner ? "owner" : p === now ? "now" : p === horizon ? "horizon" : p === leaseUntil ? "leaseUntil" : p === BATCH ? "limit" : p === cipher.keyIds ? "keyIds" : `unknown ${String(p)}`)
  const profile = process.env["BENCH_CPU_PROFILE_DIR"]
  return measured("node", [...(profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}/baseline`]), "bench/monitor/raw-monitor.mjs"], {
    ...process.env,
    DATABASE_URL: db.url,
    RAW_CONCURRENCY: String(concurrency),
    RAW_BATCH: String(BATCH),
    RAW_KEY_ID: "bench",
    RAW_KEY: keyMaterial.toString("base64"),
    RAW_TOKEN_URL: platform.tokenUrl,
    RAW_CLIENT_ID: platform.env["BING_CLIENT_ID"] ?? "",
    RAW_CLIENT_SECRET: platform.env["BING_CLIENT_SECRET"] ?? "",
    RAW_CLAIM_SQL: claimSql,
    RAW_CLAIM_ROLES: JSON.stringify(roles),
    RAW_STORE_SQL: storeSql,
    RAW_CHANNEL: CHANNEL
  }, "durationMs", (out) => JSON.parse(out.trim().split("\n").at(-1) ?? "") as Reported)
}

/** Every seeded connection due again (or the first `only`), unleased: the pass before stored live tokens for each. */
const makeAllDue = async (db: BenchDatabase, only?: number) => {
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  await client.query("update oauth_connections set expires_at = now() + interval '1 minute', lease_until = null, lease_owner = null")
  // With `only`, the other rows expire in a day: not due.
  if (only !== undefined) {
    await client.query("update oauth_connections set expires_at = now() + interval '1 day' where id not in (select id from oauth_connections order by id limit $1)", [only])
  }
  await client.query("vacuum analyze oauth_connections")
  await client.end()
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN

const throughput = async (db: BenchDatabase) => {
  const platform = await startPlatform()
  progress(`seeding ${DUE} due connections`)
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  await client.query("truncate oauth_connections cascade")
  await client.end()
  await seedDue(db.url, DUE, "c")
  // The service's start-up alone (a pass with nothing due), to tell its pass's CPU from it.
  const idle = new pg.Client({ connectionString: db.url })
  await idle.connect()
  await idle.query("update oauth_connections set expires_at = now() + interval '1 day'")
  await idle.end()
  const startup = await monitorPass(db, platform, 16)
  progress(`start-up of \`monitor --once\`: ${startup.cpuSeconds.toFixed(2)} s of CPU`)

  const rows: Array<string> = []
  for (const concurrency of CONCURRENCIES) {
    const ideal = concurrency / (LATENCY_MS / 1000)
    const passes: Record<Monitor, Array<Pass>> = { daemon: [], once: [], baseline: [], compared: [] }
    for (let round = 0; round < ROUNDS; round++) {
      // Rotating which goes first, so a slow moment of the machine hits each alike.
      const order = MONITORS.map((_, i) => MONITORS[(i + round) % MONITORS.length] ?? "baseline")
      for (const which of order) {
        progress(`round ${round + 1}, concurrency ${concurrency}: ${labels[which]}`)
        if (which === "daemon") passes.daemon.push(await daemonPass(db, platform, concurrency))
        else if (which === "compared") passes.compared.push(await daemonPass(db, platform, concurrency, COMPARE_WITH))
        else {
          await makeAllDue(db)
          passes[which].push(which === "once" ? await monitorPass(db, platform, concurrency) : await rawPass(db, platform, concurrency))
        }
      }
    }
    const baselineRate = median(passes.baseline.map((p) => p.refreshed / (p.durationMs / 1000)))
    for (const which of MONITORS) {
      const list = passes[which]
      const rates = list.map((p) => p.refreshed / (p.durationMs / 1000))
      const rate = median(rates)
      // `monitor --once`'s CPU without its start-up; the baseline's start-up is a few milliseconds; the daemon's CPU is its tick's.
      const cpuMs = median(list.map((p) => 1000 * (p.cpuSeconds - (which === "once" ? startup.cpuSeconds : 0)) / p.refreshed))
      rows.push(`| ${concurrency} | ${labels[which]} | ${median(list.map((p) => p.refreshed))} | ${median(list.map((p) => p.failed))} | ${rate.toFixed(0)} | ${rates.map((r) => r.toFixed(0)).join(" / ")} | ${ideal.toFixed(0)} | ${(100 * rate / ideal).toFixed(0)} % | ${(rate / baselineRate).toFixed(2)} | ${median(list.map((p) => p.peakRssMiB)).toFixed(0)} | ${cpuMs.toFixed(2)} | ${(100 * median(list.map((p) => p.machineBusy))).toFixed(0)} % |`)
    }
  }
  const stats = await platform.stats()
  platform.close()
  return [
    `The token endpoint refused ${stats.invalidGrants} refresh tokens as used before (${stats.refreshes} refreshes in all): no connection was refreshed twice.`,
    "",
    `${DUE} due connections, fake token endpoint answering in ${LATENCY_MS} ms (rotating refresh tokens), ${ROUNDS} alternating rounds; medians.` +
      ` CPU per refresh is the process's CPU time over the pass divided by the refreshes: for \`monitor --once\` without its start-up (${startup.cpuSeconds.toFixed(2)} s);` +
      ` for the daemon, between the reports of its warm-up tick (${WARM_UP} rows) and of the measured one:`,
    "",
    "| concurrency | monitor | refreshed | failed | refreshes/s | each round | ideal/s | of ideal | × baseline | peak RSS MiB | CPU ms per refresh | machine busy |",
    "|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
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
        limit: 500,
        keyIds: cipher.keyIds
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
  const platform = await startPlatform()
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  // The due rows get real, refreshable tokens; the rest stay as they are.
  await client.query("delete from oauth_connections where user_id like 'big-%' and expires_at < now() + interval '10 minutes'")
  await client.end()
  progress(`replacing the due rows with ${Math.round(LARGE / 100)} refreshable connections`)
  await seedDue(db.url, Math.round(LARGE / 100), "large")
  progress("one monitor pass over the large table, as `npm run monitor` runs it (--max-old-space-size=128)")
  const pass = await monitorPass(db, platform, 64, "--max-old-space-size=128")
  platform.close()
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
      // BENCH_LARGE=0 leaves the large table out.
      ...(LARGE > 0 ? ["", ...(await claims(db)), "", ...(await largePass(db))] : [])
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
