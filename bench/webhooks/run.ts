// bench:webhooks — 10,000 pending deliveries to a local receiver answering in 20 ms
// (bench/webhooks/receiver.mjs), made by the service's delivery worker (`serve`, its outbox,
// leases and result writes), against a baseline in the same run (bench/webhooks/raw-sender.mjs):
// a plain Node.js loop posting the same signed bodies with the same concurrency and writing
// nothing back. At WEBHOOK_CONCURRENCY's default (16) and at 64, in alternating rounds; the
// events are stored in one statement while the sender waits, and deliveries/s and the p50/p99
// of event stored → receipt are reported.
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { cpus } from "node:os"
import { createInterface } from "node:readline"
import pg from "pg"
import { startDatabase } from "../shared/database.js"

const N = Number(process.env["BENCH_DELIVERIES"] ?? "10000")
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? "3")
const CONCURRENCIES = (process.env["BENCH_CONCURRENCIES"] ?? "16,64").split(",").map(Number)
const SECRET = `whsec_${randomBytes(32).toString("base64")}`
const KEYS = `bench:${randomBytes(32).toString("base64")}`
/** A directory for the service's CPU profiles (node --cpu-prof), when set. */
const PROFILE = process.env["BENCH_CPU_PROFILE_DIR"]

const log = (line: string) => process.stderr.write(`[bench:webhooks] ${line}\n`)

/** Resolves with the first stdout line matching `pattern`. */
const lineOf = (child: ChildProcess, pattern: RegExp) =>
  new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    let err = ""
    child.stderr?.on("data", (d: Buffer) => void (err += d.toString()))
    lines.on("line", (line) => {
      if (pattern.test(line)) resolve(line)
    })
    child.once("exit", (code) => reject(new Error(`exited ${code} before ${pattern}: ${err.slice(-2000)}`)))
  })

interface Run {
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly duplicates: number
}

const quantile = (sorted: ReadonlyArray<number>, q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
const median = (xs: ReadonlyArray<number>) => quantile([...xs].sort((a, b) => a - b), 0.5)

const main = async () => {
  log("starting PostgreSQL and migrating")
  const db = await startDatabase()
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  const receiver = spawn("node", ["bench/webhooks/receiver.mjs"], { stdio: ["ignore", "pipe", "inherit"] })
  const port = Number(await lineOf(receiver, /^\d+$/))
  const receiverUrl = `http://127.0.0.1:${port}/hooks`
  const env = {
    ...process.env,
    DATABASE_URL: db.url,
    TOKEN_ENCRYPTION_KEYS: KEYS,
    API_KEYS: `bench-${randomBytes(16).toString("hex")}`,
    PORT: "0",
    MONITOR_ENABLED: "false",
    LOG_FORMAT: "json",
    LOG_LEVEL: "info",
    WEBHOOK_URL: receiverUrl,
    WEBHOOK_SECRETS: SECRET
  }

  /** Starts `who`, stores N events, and waits for every receipt. */
  const round = async (who: "service" | "baseline", concurrency: number): Promise<Run> => {
    await client.query("truncate webhook_deliveries, oauth_events")
    await fetch(`http://127.0.0.1:${port}/reset`, { method: "POST" })
    const childEnv = { ...env, WEBHOOK_CONCURRENCY: String(concurrency), BENCH_CONCURRENCY: String(concurrency) }
    const child = who === "service"
      ? spawn("node", [...(PROFILE === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${PROFILE}`]), "dist/main.js", "serve"], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] })
      : spawn("node", ["bench/webhooks/raw-sender.mjs"], { env: childEnv, stdio: ["pipe", "pipe", "pipe"] })
    await lineOf(child, who === "service" ? /delivering webhooks/ : /^ready$/)
    // The service has written its endpoint at start; the baseline reads the rows the trigger writes for it.
    const stored = await client.query(`insert into oauth_events (user_id, platform, kind, detail)
      select 'bench-' || g, 'gsc', 'connected', '{}'::jsonb from generate_series(1, ${N}) g returning at`)
    const t0 = Date.now()
    if (stored.rowCount !== N) throw new Error(`stored ${stored.rowCount} events`)
    const deliveries = Number((await client.query("select count(*)::int as n from webhook_deliveries where status = 'pending'")).rows[0].n)
    if (deliveries !== N) throw new Error(`the outbox holds ${deliveries} deliveries, not ${N}`)
    const createdAt = new Map<string, number>(
      (await client.query("select message_id, extract(epoch from created_at) * 1000 as ms from webhook_deliveries")).rows.map((r) => [r.message_id, Number(r.ms)])
    )
    if (who === "baseline") child.stdin?.write("go\n")
    // Polled cheaply (a count) so that watching costs either sender next to nothing.
    for (;;) {
      if (Number(await (await fetch(`http://127.0.0.1:${port}/count`)).text()) >= N) break
      if (child.exitCode !== null && who === "service") throw new Error("the service exited")
      await new Promise((r) => setTimeout(r, 100))
    }
    const receipts = await (await fetch(`http://127.0.0.1:${port}/receipts`)).json() as Array<[string, number]>
    const unique = new Map<string, number>()
    for (const [id, at] of receipts) if (!unique.has(id)) unique.set(id, at)
    const last = Math.max(...unique.values())
    const latencies = [...unique].map(([id, at]) => at - (createdAt.get(id) ?? Number.NaN)).sort((a, b) => a - b)
    if (who === "service") {
      // Every delivery recorded delivered before the next round.
      for (;;) {
        const n = Number((await client.query("select count(*)::int as n from webhook_deliveries where status = 'delivered'")).rows[0].n)
        if (n === N) break
        await new Promise((r) => setTimeout(r, 50))
      }
      child.kill("SIGTERM")
    }
    await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once("exit", r)))
    return { perSecond: N / ((last - t0) / 1000), p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), duplicates: receipts.length - unique.size }
  }

  const results: Array<{ concurrency: number; service: Array<Run>; baseline: Array<Run> }> = []
  try {
    for (const concurrency of CONCURRENCIES) {
      const runs = { concurrency, service: [] as Array<Run>, baseline: [] as Array<Run> }
      for (let r = 1; r <= ROUNDS; r++) {
        const order = r % 2 === 1 ? (["service", "baseline"] as const) : (["baseline", "service"] as const)
        for (const who of order) {
          log(`concurrency ${concurrency}, round ${r}/${ROUNDS}: ${who}`)
          const run = await round(who, concurrency)
          log(`  ${Math.round(run.perSecond)} deliveries/s, p50 ${Math.round(run.p50)} ms, p99 ${Math.round(run.p99)} ms, ${run.duplicates} duplicates`)
          runs[who].push(run)
        }
      }
      results.push(runs)
    }
  } finally {
    receiver.kill()
    await client.end()
    await db.stop()
  }

  console.log(`${N} pending deliveries, receiver answering in 20 ms, ${ROUNDS} alternating rounds, medians; CPU: ${cpus()[0]?.model ?? "unknown"} × ${cpus().length}; PostgreSQL: ${db.server}\n`)
  console.log("| concurrency | sender | deliveries/s | × baseline | each round | p50 ms | p99 ms | duplicates |")
  console.log("|---:|---|---:|---:|---|---:|---:|---:|")
  for (const { baseline, concurrency, service } of results) {
    const base = median(baseline.map((r) => r.perSecond))
    for (const [name, runs] of [["baseline (plain loop)", baseline], ["service", service]] as const) {
      const rate = median(runs.map((r) => r.perSecond))
      console.log(`| ${concurrency} | ${name} | ${Math.round(rate)} | ${(rate / base).toFixed(2)} | ${runs.map((r) => Math.round(r.perSecond)).join(" / ")} | ${Math.round(median(runs.map((r) => r.p50)))} | ${Math.round(median(runs.map((r) => r.p99)))} | ${runs.reduce((n, r) => n + r.duplicates, 0)} |`)
    }
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
