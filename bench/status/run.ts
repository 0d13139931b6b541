// GET /v1/users/{id}/connections over 10,000 users, against a raw node:http + pg server
// answering the same query with the same JSON, in the same run: the service with its cache
// cold (every request a miss) and warm (every request a hit), in alternating rounds (medians
// reported). `npm run bench:status`; BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS.
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { isDeepStrictEqual } from "node:util"
import autocannon from "autocannon"
import pg from "pg"
import { freePort, peakRssMiB, startDatabase, waitForHttp } from "../shared/database.js"

const USERS = 10_000
const CONNECTIONS = Number(process.env["BENCH_CONNECTIONS"] ?? "50")
const DURATION = Number(process.env["BENCH_SECONDS"] ?? "5")
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? "3")
const API_KEY = "bench-api-key-0123456789"

const seed = async (url: string) => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query(`
    insert into oauth_connections (user_id, platform, account_id, status, access_token, refresh_token, key_id, token_type,
      scope, expires_at, provider_data, created_at, updated_at)
    select 'user-' || u, p, '', 'active', decode(md5(random()::text), 'hex'), decode(md5(random()::text), 'hex'), 'k1', 'Bearer',
      'webmaster.manage', now() + interval '1 hour', '{"sites":[{"url":"https://example.com/","verified":true}]}'::jsonb, now(), now()
    from generate_series(1, ${USERS}) u, unnest(array['gsc', 'bing']) p`)
  await client.query("analyze oauth_connections")
  await client.end()
}

const profile = process.env["BENCH_CPU_PROFILE_DIR"]

/** A server process; with BENCH_CPU_PROFILE_DIR set, the service's CPU profile is written there. */
const start = (command: string, args: ReadonlyArray<string>, env: Record<string, string>) =>
  spawn(command, command === "node" && profile !== undefined ? ["--cpu-prof", `--cpu-prof-dir=${profile}`, ...args] : args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "inherit"]
  })

const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve()
    const force = setTimeout(() => child.kill("SIGKILL"), 5000)
    child.once("exit", () => {
      clearTimeout(force)
      resolve()
    })
    child.kill("SIGTERM")
  })

const path = (i: number) => `/v1/users/user-${(i % USERS) + 1}/connections`

const load = async (base: string) => {
  let i = 0
  const result = await autocannon({
    url: base,
    connections: CONNECTIONS,
    duration: DURATION,
    headers: { authorization: `Bearer ${API_KEY}` },
    requests: [{ method: "GET", setupRequest: (request) => ({ ...request, path: path(i++) }) }]
  })
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${base}: ${result.non2xx} non-2xx answers, ${result.errors} errors`)
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, total: result.requests.total }
}

const get = (base: string, i: number) =>
  fetch(`${base}${path(i)}`, { headers: { authorization: `Bearer ${API_KEY}` } }).then((r) => r.json())

const progress = (message: string) => process.stderr.write(`[bench:status] ${message}\n`)

const main = async () => {
  progress("starting PostgreSQL and migrating")
  const db = await startDatabase()
  progress(`seeding ${USERS} users`)
  await seed(db.url)
  const serviceEnv = (ttl: string, port: number) => ({
    DATABASE_URL: db.url,
    PORT: String(port),
    API_KEYS: API_KEY,
    // The key id the rows are seeded with: under another, every connection would read as unreadable.
    TOKEN_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString("base64")}`,
    LOG_LEVEL: "warn",
    MONITOR_ENABLED: "false",
    STATUS_CACHE_TTL: ttl,
    FRONTEND_URL: "http://localhost:3000",
    GSC_CLIENT_ID: "id",
    GSC_CLIENT_SECRET: "secret",
    GSC_REDIRECT_URI: "http://localhost:3000/oauth/gsc/callback",
    BING_CLIENT_ID: "id",
    BING_CLIENT_SECRET: "secret",
    BING_REDIRECT_URI: "http://localhost:3000/oauth/bing/callback"
  })
  interface Server {
    readonly name: string
    readonly results: Array<Awaited<ReturnType<typeof load>>>
    rss: number
  }
  const server = (name: string): Server => ({ name, results: [], rss: Number.NaN })
  const [rawServer, coldServer, warmServer] = [
    server("raw node:http + pg (baseline)"),
    server("service, cache cold (every request a miss)"),
    server("service, cache warm (every request a hit)")
  ]
  const servers = [rawServer, coldServer, warmServer]
  try {
    const rawPort = await freePort()
    const raw = start("node", ["bench/status/raw-server.mjs"], { DATABASE_URL: db.url, PORT: String(rawPort), API_KEYS: API_KEY })
    const rawBase = `http://127.0.0.1:${rawPort}`
    const coldPort = await freePort()
    const cold = start("node", ["dist/main.js", "serve"], serviceEnv("0s", coldPort))
    const coldBase = `http://127.0.0.1:${coldPort}`
    const warmPort = await freePort()
    const warm = start("node", ["dist/main.js", "serve"], serviceEnv("5m", warmPort))
    const warmBase = `http://127.0.0.1:${warmPort}`
    progress("starting the raw server and the service twice (cache cold, cache warm)")
    await Promise.all([waitForHttp(`${rawBase}/v1/users/user-1/connections`), waitForHttp(`${coldBase}/health`), waitForHttp(`${warmBase}/health`)])

    // Same JSON from all three, before measuring anything.
    for (const i of [0, 1, 4999, 9999]) {
      const [a, b, c] = await Promise.all([get(rawBase, i), get(coldBase, i), get(warmBase, i)])
      if (!isDeepStrictEqual(a, b) || !isDeepStrictEqual(a, c)) {
        throw new Error(`the servers disagree for ${path(i)}:\n${JSON.stringify(a)}\n${JSON.stringify(b)}\n${JSON.stringify(c)}`)
      }
    }
    progress("warming the cache")
    for (let i = 0; i < USERS; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => get(warmBase, i + j)))

    // Rounds alternate the servers, so that a slower moment of the machine hits all three alike.
    const rounds: ReadonlyArray<readonly [Server, string]> = [[rawServer, rawBase], [coldServer, coldBase], [warmServer, warmBase]]
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [s, base] of rounds) {
        progress(`round ${round}/${ROUNDS}: ${s.name}, ${DURATION} s`)
        s.results.push(await load(base))
      }
    }
    rawServer.rss = peakRssMiB(raw.pid ?? 0)
    coldServer.rss = peakRssMiB(cold.pid ?? 0)
    warmServer.rss = peakRssMiB(warm.pid ?? 0)
    await Promise.all([stop(cold), stop(warm), stop(raw)])
  } finally {
    await db.stop()
  }

  const median = (values: ReadonlyArray<number>) => {
    const sorted = [...values].sort((a, b) => a - b)
    return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
  }
  const summary = servers.map((s) => ({
    name: s.name,
    rps: median(s.results.map((r) => r.rps)),
    all: s.results.map((r) => r.rps.toFixed(0)).join(" / "),
    p50: median(s.results.map((r) => r.p50)),
    p99: median(s.results.map((r) => r.p99)),
    rss: s.rss
  }))
  const baseline = summary[0]?.rps ?? Number.NaN
  const lines = [
    `GET /v1/users/{id}/connections, ${USERS} users × 2 connections, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${DURATION} s per server (medians), PostgreSQL: ${db.server}`,
    "",
    "| server | requests/s (median) | × baseline | each round | p50 ms | p99 ms | peak RSS MiB |",
    "|---|---:|---:|---|---:|---:|---:|",
    ...summary.map((r) =>
      `| ${r.name} | ${r.rps.toFixed(0)} | ${(r.rps / baseline).toFixed(2)} | ${r.all} | ${r.p50} | ${r.p99} | ${Number.isNaN(r.rss) ? "" : r.rss.toFixed(0)} |`
    )
  ]
  process.stdout.write(lines.join("\n") + "\n")
}

// Top-level await: the runner ends the process when the module has been evaluated.
await main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`)
  process.exit(1)
})
