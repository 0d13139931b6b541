import { describe, expect, it } from "@effect/vitest"
import { Duration } from "effect"
import { nextAttemptAt } from "../../src/integrations/refreshPolicy.js"
import { at } from "../support/time.js"

const NOW = at(0)
const minutes = (n: number) => Duration.toMillis(Duration.minutes(n))
const afterNow = (next: Date) => next.getTime() - NOW.getTime()

const failure = (overrides: Partial<Parameters<typeof nextAttemptAt>[0]> = {}) =>
  nextAttemptAt({
    now: NOW,
    failures: 0,
    retryAfterMs: undefined,
    expiresAt: null,
    retryAfterMax: Duration.hours(1),
    monitorInterval: Duration.minutes(1),
    ...overrides
  })

describe("nextAttemptAt", () => {
  it("waits the backoff, 1 min doubling per failure up to 1 h, when the platform asked for nothing longer", () => {
    expect([0, 1, 2, 6, 9].map((failures) => afterNow(failure({ failures, retryAfterMs: 1000 })))).toEqual([
      minutes(1),
      minutes(2),
      minutes(4),
      minutes(60),
      minutes(60)
    ])
  })

  it("honours a Retry-After longer than the backoff, up to RETRY_AFTER_MAX", () => {
    expect(afterNow(failure({ retryAfterMs: minutes(30) }))).toBe(minutes(30))
    expect(afterNow(failure({ retryAfterMs: 864000 * 1000 }))).toBe(minutes(60))
    expect(afterNow(failure({ retryAfterMs: 864000 * 1000, retryAfterMax: Duration.minutes(10) }))).toBe(minutes(10))
  })

  it("while the token is valid, comes no later than one MONITOR_INTERVAL before its expiry, for a Retry-After and for the backoff alike", () => {
    const expiresAt = new Date(NOW.getTime() + minutes(20))
    expect(afterNow(failure({ expiresAt, retryAfterMs: minutes(30) }))).toBe(minutes(19))
    expect(afterNow(failure({ expiresAt, failures: 6 }))).toBe(minutes(19))
    expect(afterNow(failure({ expiresAt, failures: 6, monitorInterval: Duration.minutes(5) }))).toBe(minutes(15))
    // Sooner than the ceiling: the backoff as it is.
    expect(afterNow(failure({ expiresAt, failures: 1 }))).toBe(minutes(2))
  })

  it("when the token expires within one MONITOR_INTERVAL, or has expired, the backoff and Retry-After apply unchanged, never an attempt at once", () => {
    for (const expiresInMs of [minutes(1), 30_000, 0, -minutes(10)]) {
      const expiresAt = new Date(NOW.getTime() + expiresInMs)
      expect(afterNow(failure({ expiresAt }))).toBe(minutes(1))
      expect(afterNow(failure({ expiresAt, retryAfterMs: minutes(30) }))).toBe(minutes(30))
    }
  })
})
