import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { isAlive, readPostmaster } from "../../src/db/embeddedGuards.js"
import { randomKey } from "../support/config.js"
import { eventually, scratchDirectory, serviceEnv, sleep, startService } from "../support/processes.js"

const key = randomKey("k1")

/** Every command on one embedded data directory, as a developer runs them without DATABASE_URL. */
const on = (work: string) => ({
  ...serviceEnv(key),
  MONITOR_INTERVAL: "1s",
  EMBEDDED_DATABASE_DIR: join(work, "data", "pg"),
  DEV_SECRETS_FILE: join(work, "data", "secrets.json")
})

const addressOf = async (service: ReturnType<typeof startService>) => {
  const line = await service.waitForLine(/Listening on http:\/\/127\.0\.0\.1:\d+/)
  return /http:\/\/127\.0\.0\.1:\d+/.exec(line)?.[0] ?? ""
}

/** Asks /health every 100 ms until stopped; gives every status seen. */
const watchHealth = (base: string) => {
  const seen: Array<number> = []
  let on = true
  const done = (async () => {
    while (on) {
      const status = await fetch(`${base}/health`).then((r) => r.status, () => 0)
      seen.push(status)
      await sleep(100)
    }
  })()
  return { seen, stop: async () => {
    on = false
    await done
    return seen
  } }
}

const serverOf = (work: string) => readPostmaster(join(work, "data", "pg", "postmaster.pid"))

describe("several commands on one embedded database", () => {
  it("serve keeps answering while monitor --once and migrate run on its directory, and after they exit", async () => {
    const work = scratchDirectory()
    const serve = startService(["serve"], on(work), work)
    const base = await addressOf(serve)
    const health = watchHealth(base)
    const once = startService(["monitor", "--once"], on(work), work)
    const migrate = startService(["migrate"], on(work), work)
    expect((await once.exit).code).toBe(0)
    expect((await migrate.exit).code).toBe(0)
    expect(once.lines.join("\n")).toMatch(/using the embedded PostgreSQL \(pid \d+\) already running/)
    await sleep(2000)
    const seen = await health.stop()
    expect(seen.length).toBeGreaterThan(10)
    expect(seen.filter((s) => s !== 200)).toEqual([])
    const server = serverOf(work)
    expect(server !== undefined && isAlive(server.pid)).toBe(true)
    serve.signal("SIGTERM")
    expect((await serve.exit).code).toBe(0)
    // The last process using it stopped it.
    await eventually(() => server === undefined || !isAlive(server.pid), 10_000, "the embedded PostgreSQL to stop")
  }, 120_000)

  it("the server outlives the process that started it while another uses it, and stops with the last one", async () => {
    const work = scratchDirectory()
    const monitor = startService(["monitor"], on(work), work)
    await monitor.waitForLine(/token monitor started/)
    const serve = startService(["serve"], on(work), work)
    const base = await addressOf(serve)
    const server = serverOf(work)
    monitor.signal("SIGTERM")
    expect((await monitor.exit).code).toBe(0)
    expect(monitor.lines.join("\n")).toMatch(/stays up for 1 other process/)
    const health = watchHealth(base)
    await sleep(1500)
    expect((await health.stop()).filter((s) => s !== 200)).toEqual([])
    expect(server !== undefined && isAlive(server.pid)).toBe(true)
    serve.signal("SIGTERM")
    expect((await serve.exit).code).toBe(0)
    await eventually(() => server === undefined || !isAlive(server.pid), 10_000, "the embedded PostgreSQL to stop")
  }, 120_000)

  it("a server whose processes were all killed is taken as a leftover: stopped, and started anew", async () => {
    const work = scratchDirectory()
    const serve = startService(["serve"], on(work), work)
    await addressOf(serve)
    const leftover = serverOf(work)
    serve.signal("SIGKILL", "process")
    await serve.exit
    expect(leftover !== undefined && isAlive(leftover.pid)).toBe(true)
    const migrate = startService(["migrate"], on(work), work)
    expect((await migrate.exit).code).toBe(0)
    expect(migrate.lines.join("\n")).toMatch(/stopping the embedded PostgreSQL \(pid \d+\) left running/)
    expect(leftover !== undefined && isAlive(leftover.pid)).toBe(false)
  }, 120_000)
})
