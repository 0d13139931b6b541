// A PostgreSQL for a benchmark: DATABASE_URL's server, or an embedded one in a temporary
// directory; a fresh database on it, migrated by the service's own `migrate` command.
import { execFileSync } from "node:child_process"
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Logger, LogLevel, Redacted, Scope } from "effect"
import pg from "pg"
import { startEmbeddedPostgres } from "../../src/db/embedded.js"

export const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer()
    s.listen(0, "127.0.0.1", () => {
      const address = s.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      s.close(() => resolve(port))
    })
  })

export interface BenchDatabase {
  readonly url: string
  readonly server: "DATABASE_URL" | "embedded"
  readonly stop: () => Promise<void>
}

export const startDatabase = async (): Promise<BenchDatabase> => {
  let adminUrl = process.env["DATABASE_URL"]
  let stopServer = async () => {}
  const server = adminUrl === undefined || adminUrl === "" ? "embedded" : "DATABASE_URL"
  if (adminUrl === undefined || adminUrl === "") {
    const dir = mkdtempSync(join(tmpdir(), "oi-bench-"))
    chmodSync(dir, 0o755)
    const scope = Effect.runSync(Scope.make())
    const started = await Effect.runPromise(
      Scope.extend(startEmbeddedPostgres(join(dir, "pg"), { maxConnections: 300 }), scope).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)))
    )
    adminUrl = Redacted.value(started)
    stopServer = async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      rmSync(dir, { recursive: true, force: true })
    }
  }
  const name = `oi_bench_${Date.now().toString(36)}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query(`create database ${name}`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  execFileSync("node", ["dist/main.js", "migrate"], { env: { ...process.env, DATABASE_URL: url.toString(), LOG_LEVEL: "error" }, stdio: "inherit" })
  return {
    url: url.toString(),
    server,
    stop: async () => {
      await admin.query(`drop database if exists ${name} with (force)`)
      await admin.end()
      await stopServer()
    }
  }
}

/** Peak resident set size of a process, in MiB (Linux). */
export const peakRssMiB = (pid: number): number => {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmHWM:"))
  return line === undefined ? Number.NaN : Number(line.replace(/\D+/g, "")) / 1024
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (Linux). */
export const cpuSeconds = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  // The fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
}

/** Busy and total CPU time of the whole machine so far, in clock ticks, from /proc/stat (Linux). */
export const machineTicks = (): { readonly busy: number; readonly total: number } => {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number)
  const total = fields.reduce((a, b) => a + b, 0)
  // idle and iowait
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
  return { busy: total - idle, total }
}

/** USER_HZ: 100 on every mainstream Linux build. */
const CLOCK_TICKS = 100

export const waitForHttp = async (url: string, timeoutMs = 30_000) => {
  const start = Date.now()
  while (Date.now() - start < timeoutMs) {
    try {
      const r = await fetch(url)
      if (r.status < 500) return
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`)
}
