import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { startEmbeddedPostgres } from "../../src/db/embedded.js"
import { randomKey } from "../support/config.js"
import { redirectUri } from "../support/harness.js"
import { startFakeGsc } from "../support/platforms/index.js"
import { eventually, migratedDatabase, scratchDirectory, seedDue, serviceEnv, sleep, startService, storedConnections } from "../support/processes.js"

const key = randomKey("k1")

/** What the service needs to refresh GSC connections against `fake`, every second. */
const refreshingEnv = (fake: Awaited<ReturnType<typeof startFakeGsc>>) => ({
  ...serviceEnv(key),
  MONITOR_INTERVAL: "1s",
  ...fake.env(redirectUri("gsc"))
})

const fakePlatform = async () => {
  // A platform that rotates refresh tokens (the used one is refused) and holds each answer for 3 s.
  const fake = await startFakeGsc({ rotateRefreshTokens: true })
  fake.setBehaviour("token", "slow", { delayMs: 3000 })
  return fake
}

/** A scope on the embedded server of `dataDir` (joining it as one more user), giving its URL. */
const joinEmbedded = async (dataDir: string) => {
  const scope = Effect.runSync(Scope.make())
  const url = await Effect.runPromise(Scope.extend(startEmbeddedPostgres(dataDir), scope))
  return { url, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

describe("stopping the service while a platform call is in flight", () => {
  it("Ctrl-C (two SIGINTs to the process group, 5 ms apart) waits for the rotated token, stores it and exits 0", async () => {
    const fake = await fakePlatform()
    const work = scratchDirectory()
    const dataDir = join(work, "data", "pg")
    // The service starts the embedded PostgreSQL itself, as `npm start` does without DATABASE_URL.
    const service = startService(["serve"], { ...refreshingEnv(fake), EMBEDDED_DATABASE_DIR: dataDir, DEV_SECRETS_FILE: join(work, "data", "secrets.json") }, work)
    await service.waitForLine(/Listening on http/)
    const db = await joinEmbedded(dataDir)
    try {
      await seedDue(db.url, key, fake, "gsc", ["ctrl-c"])
      const before = (await storedConnections(db.url, key, "gsc", ["ctrl-c"]))[0]
      await eventually(() => fake.requestsTo("token").length === 1, 15_000, "the refresh to reach the platform")
      service.signal("SIGINT", "group")
      await sleep(5)
      service.signal("SIGINT", "group")
      const exit = await service.exit
      expect(exit).toEqual({ code: 0, signal: null })
      const after = (await storedConnections(db.url, key, "gsc", ["ctrl-c"]))[0]
      expect(after?.refreshToken).not.toBe(before?.refreshToken)
      expect(fake.isLiveRefreshToken(after?.refreshToken ?? "")).toBe(true)
      expect(fake.isLiveAccessToken(after?.accessToken ?? "")).toBe(true)
      expect(service.lines.some((l) => l.includes("SIGINT again: already stopping"))).toBe(true)
      // A line says it is stopping, the last one that it stopped (after the embedded database).
      const stopping = service.lines.findIndex((l) => l.includes("SIGINT: stopping"))
      expect(stopping).toBeGreaterThanOrEqual(0)
      expect(JSON.parse(service.lines.at(-1) ?? "{}")).toMatchObject({ message: "stopped" })
    } finally {
      await db.close()
      await fake.close()
    }
  }, 90_000)

  it("SIGTERM then SIGINT to the process alone, 5 ms apart: the same", async () => {
    const fake = await fakePlatform()
    const url = await migratedDatabase()
    try {
      await seedDue(url, key, fake, "gsc", ["term-int"])
      const service = startService(["monitor"], { ...refreshingEnv(fake), DATABASE_URL: url }, scratchDirectory())
      await eventually(() => fake.requestsTo("token").length === 1, 15_000, "the refresh to reach the platform")
      service.signal("SIGTERM")
      await sleep(5)
      service.signal("SIGINT")
      expect(await service.exit).toEqual({ code: 0, signal: null })
      const after = (await storedConnections(url, key, "gsc", ["term-int"]))[0]
      expect(fake.isLiveRefreshToken(after?.refreshToken ?? "")).toBe(true)
      expect(after?.lastRefreshedAt).not.toBeNull()
    } finally {
      await fake.close()
    }
  }, 90_000)
})
