import { describe, expect, it } from "@effect/vitest"
import { Duration, Option } from "effect"
import { DELIVERY_WAITS, nextDeliveryAttempt } from "../../src/webhooks/retrySchedule.js"

const now = new Date("2026-12-02T10:00:00Z")
const after = (failures: number, random: number) =>
  Option.map(nextDeliveryAttempt(failures, now, random), (d) => d.getTime() - now.getTime())

describe("webhook delivery retries", () => {
  it("at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; then failed", () => {
    const middle = Array.from({ length: 8 }, (_, i) => Option.getOrThrow(after(i + 1, 0.5)))
    expect(middle).toEqual([0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000])
    expect(Option.isNone(nextDeliveryAttempt(9, now, 0.5))).toBe(true)
    expect(DELIVERY_WAITS.reduce((sum, d) => sum + Duration.toHours(d), 0)).toBeCloseTo(27.6, 1)
  })

  it("jitters each wait by at most a fifth either way", () => {
    expect(Option.getOrThrow(after(3, 0))).toBe(240_000)
    expect(Option.getOrThrow(after(3, 0.999999))).toBeLessThanOrEqual(360_000)
    expect(Option.getOrThrow(after(3, 0.999999))).toBeGreaterThan(359_000)
    // At once stays at once.
    expect(Option.getOrThrow(after(1, 0.9))).toBe(0)
  })
})
