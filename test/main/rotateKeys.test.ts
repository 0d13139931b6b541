import { describe, expect, it } from "@effect/vitest"
import { randomKey } from "../support/config.js"
import { redirectUri } from "../support/harness.js"
import { startFakeGsc } from "../support/platforms/index.js"
import { eventually, keyVariable, migratedDatabase, scratchDirectory, seedDue, serviceEnv, startService, storedConnections } from "../support/processes.js"

const k1 = randomKey("k1")
const k2 = randomKey("k2")

describe("rotate-keys beside a running monitor", () => {
  it("re-seals every token under the new key while the monitor refreshes them; then the old key can go: every token opens, no refresh lost", async () => {
    // Tokens that expire within REFRESH_AHEAD at once: every pass refreshes every row, rotating its refresh token.
    const fake = await startFakeGsc({ rotateRefreshTokens: true, expiresIn: 60, latencyMs: 15 })
    try {
      const url = await migratedDatabase()
      const users = Array.from({ length: 600 }, (_, i) => `rotate-${i}`)
      await seedDue(url, k1, fake, "gsc", users)
      const both = {
        ...serviceEnv(k1),
        DATABASE_URL: url,
        TOKEN_ENCRYPTION_KEYS: `${keyVariable(k2)},${keyVariable(k1)}`,
        MONITOR_INTERVAL: "1s",
        REFRESH_AHEAD: "10m",
        MONITOR_CONCURRENCY: "2",
        ...fake.env(redirectUri("gsc"))
      }
      const monitor = startService(["monitor"], both, scratchDirectory())
      await eventually(() => fake.stats.refreshes >= 20, 30_000, "the monitor to be refreshing")

      const rotation = startService(["rotate-keys"], both, scratchDirectory())
      expect((await rotation.exit).code).toBe(0)
      const summary = rotation.lines.find((l) => l.startsWith("re-sealed under k2:"))
      // Most rows were still under k1 when it started; the monitor had re-sealed the ones it refreshed.
      expect(Number(/^re-sealed under k2: (\d+);/.exec(summary ?? "")?.[1])).toBeGreaterThan(0)
      expect(rotation.lines.find((l) => l.startsWith("k1 "))).toMatch(/^k1\s+opens only\s+0\s+0\s+0$/)
      // The monitor kept refreshing meanwhile, and goes on.
      const during = fake.stats.refreshes
      await eventually(() => fake.stats.refreshes >= during + 20, 30_000, "more refreshes after the rotation")
      monitor.signal("SIGTERM")
      expect((await monitor.exit).code).toBe(0)

      // k2 alone: the start check passes, nothing is sealed under k1, every token opens.
      const alone = { ...both, TOKEN_ENCRYPTION_KEYS: keyVariable(k2) }
      const status = startService(["rotate-keys", "--status"], alone, scratchDirectory())
      expect((await status.exit).code).toBe(0)
      expect(status.lines.find((l) => l.startsWith("k2 "))).toMatch(/^k2\s+current \(seals\)\s+600\s+0\s+0$/)
      const stored = await storedConnections(url, k2, "gsc", users)
      expect(stored.every((c) => c.status === "active")).toBe(true)
      expect(stored.filter((c) => c.accessToken === undefined)).toEqual([])
      // No rotated refresh token was lost: each stored one is the fake's live one.
      expect(stored.filter((c) => !fake.isLiveRefreshToken(c.refreshToken ?? "")).map((c) => c.userId)).toEqual([])
    } finally {
      await fake.close()
    }
  }, 120_000)
})
