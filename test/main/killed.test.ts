import { describe, expect, it } from "@effect/vitest"
import { randomKey } from "../support/config.js"
import { redirectUri } from "../support/harness.js"
import { startFakeGsc } from "../support/platforms/index.js"
import { eventually, migratedDatabase, scratchDirectory, seedDue, serviceEnv, sleep, startService, storedConnections } from "../support/processes.js"

const key = randomKey("k1")
const CONCURRENCY = 8
const LEASE_SECONDS = 5

describe("a monitor killed with SIGKILL mid-pass", () => {
  it("loses at most MONITOR_CONCURRENCY rotated tokens, and the next pass refreshes every other row", async () => {
    // Rotating, refusing a used refresh token, answering fast: many answers are on their way to storage at any instant.
    const fake = await startFakeGsc({ rotateRefreshTokens: true, latencyMs: 5 })
    try {
      const url = await migratedDatabase()
      const users = Array.from({ length: 300 }, (_, i) => `killed-${i}`)
      await seedDue(url, key, fake, "gsc", users)
      const env = {
        ...serviceEnv(key),
        DATABASE_URL: url,
        MONITOR_CONCURRENCY: String(CONCURRENCY),
        MONITOR_BATCH: "50",
        LEASE_DURATION: `${LEASE_SECONDS}s`,
        RETRY_BUDGET: "1s",
        OAUTH_HTTP_TIMEOUT: "1s",
        ...fake.env(redirectUri("gsc"))
      }
      const first = startService(["monitor", "--once"], env, scratchDirectory())
      await eventually(() => fake.stats.refreshes >= 60, 30_000, "the first pass to get going")
      first.signal("SIGKILL")
      await first.exit
      const refreshedByFirst = fake.stats.refreshes
      expect(refreshedByFirst).toBeLessThan(300)

      const afterKill = await storedConnections(url, key, "gsc", users)
      const lost = afterKill.filter((c) => !fake.isLiveRefreshToken(c.refreshToken ?? "")).map((c) => c.userId)
      expect(lost.length).toBeLessThanOrEqual(CONCURRENCY)

      // The killed pass's leases run out; then the next pass takes every row still due.
      await sleep(LEASE_SECONDS * 1000 + 500)
      const second = startService(["monitor", "--once"], env, scratchDirectory())
      expect((await second.exit).code).toBe(0)
      const end = await storedConnections(url, key, "gsc", users)
      const kept = end.filter((c) => !lost.includes(c.userId))
      expect(kept).toHaveLength(300 - lost.length)
      for (const c of kept) {
        expect(c.status).toBe("active")
        expect(c.lastRefreshedAt).not.toBeNull()
        expect(fake.isLiveRefreshToken(c.refreshToken ?? "")).toBe(true)
      }
      expect(end.filter((c) => lost.includes(c.userId)).map((c) => c.status)).toEqual(lost.map(() => "needs_reauth"))
    } finally {
      await fake.close()
    }
  }, 120_000)
})
