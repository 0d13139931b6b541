import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Option, Ref, TestClock } from "effect"
import { InvalidGrant, ProviderUnavailable, RateLimited } from "../../src/domain/errors.js"
import * as CircuitBreaker from "../../src/resilience/CircuitBreaker.js"
import { type RetrySettings, withRetry } from "../../src/resilience/retry.js"

const exact: RetrySettings = {
  retries: 3,
  initialDelay: Duration.seconds(1),
  factor: 2,
  maxDelay: Duration.seconds(30),
  jitter: false,
  budget: Duration.minutes(10)
}
const down = new ProviderUnavailable({ platform: "gsc", reason: "status", status: 503 })

/** An attempt through `breaker` that records its start time and fails with `failWith(n)` (n from 1), or succeeds. */
const recorded = <E>(breaker: CircuitBreaker.CircuitBreaker, failWith: (n: number) => E | undefined) =>
  Effect.gen(function*() {
    const times = yield* Ref.make<ReadonlyArray<number>>([])
    const attempt = breaker.protect(Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const n = (yield* Ref.updateAndGet(times, (t) => [...t, now])).length
      const error = failWith(n)
      return error === undefined ? "ok" : yield* Effect.fail(error)
    }))
    return { attempt, times }
  })

/** Runs the attempt with retries in a fiber, advancing the TestClock far enough; returns attempt times. */
const run = <E>(
  failWith: (n: number) => E | undefined,
  settings: RetrySettings,
  breakerSettings: Partial<CircuitBreaker.BreakerSettings> = { failureThreshold: 100 }
) =>
  Effect.gen(function*() {
    const breaker = yield* CircuitBreaker.make("gsc", breakerSettings)
    const { attempt, times } = yield* recorded(breaker, failWith)
    const fiber = yield* Effect.fork(Effect.either(withRetry(attempt, settings, breaker)))
    yield* TestClock.adjust("20 minutes")
    const result = yield* Fiber.join(fiber)
    return { result, times: yield* Ref.get(times), breaker }
  })

describe("retry", () => {
  it.effect("retries a transient failure 3 times, 1 s, 2 s and 4 s apart", () =>
    Effect.gen(function*() {
      const { result, times } = yield* run(() => down, exact)
      expect(times).toEqual([0, 1000, 3000, 7000])
      expect(result._tag).toBe("Left")
    }))

  it.effect("stops retrying at the first success", () =>
    Effect.gen(function*() {
      const { result, times } = yield* run((n) => (n < 3 ? down : undefined), exact)
      expect(times).toEqual([0, 1000, 3000])
      expect(result._tag).toBe("Right")
    }))

  it.effect("caps each delay at max_delay", () =>
    Effect.gen(function*() {
      const { times } = yield* run(() => down, { ...exact, retries: 5, maxDelay: Duration.seconds(3) })
      expect(times).toEqual([0, 1000, 3000, 6000, 9000, 12000])
    }))

  it.effect("jitter keeps each delay within 0.8-1.2 of its nominal value", () =>
    Effect.gen(function*() {
      const { times } = yield* run(() => down, { ...exact, jitter: true })
      const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0))
      gaps.forEach((gap, i) => {
        const nominal = 1000 * 2 ** i
        expect(gap).toBeGreaterThanOrEqual(nominal * 0.8)
        expect(gap).toBeLessThanOrEqual(nominal * 1.2)
      })
      expect(gaps).toHaveLength(3)
    }))

  it.effect("waits for a longer Retry-After of a 429", () =>
    Effect.gen(function*() {
      const { times } = yield* run(
        (n) => (n === 1 ? new RateLimited({ platform: "gsc", retryAfterMs: 5000 }) : n < 4 ? down : undefined),
        exact
      )
      expect(times).toEqual([0, 5000, 7000, 11000])
    }))

  it.effect("keeps its own delay when Retry-After is shorter", () =>
    Effect.gen(function*() {
      const { times } = yield* run((n) => (n === 1 ? new RateLimited({ platform: "gsc", retryAfterMs: 10 }) : undefined), exact)
      expect(times).toEqual([0, 1000])
    }))

  it.effect("does not retry a terminal error", () =>
    Effect.gen(function*() {
      const { result, times } = yield* run(() => new InvalidGrant({ platform: "gsc" }), exact)
      expect(times).toEqual([0])
      expect(result._tag === "Left" && result.left._tag).toBe("InvalidGrant")
    }))

  it.effect("makes no retry that would start past the budget, and fails with the last error", () =>
    Effect.gen(function*() {
      const { result, times } = yield* run(() => down, { ...exact, budget: Duration.seconds(5) })
      // The next retry would start at 7 s, past the 5 s budget.
      expect(times).toEqual([0, 1000, 3000])
      expect(result._tag === "Left" && result.left).toBe(down)
    }))

  it.effect("a Retry-After longer than the budget ends the operation at once, keeping the retry-after", () =>
    Effect.gen(function*() {
      const limited = new RateLimited({ platform: "gsc", retryAfterMs: 10 * 60_000 })
      const breaker = yield* CircuitBreaker.make("gsc")
      const { attempt, times } = yield* recorded(breaker, () => limited)
      const fiber = yield* Effect.fork(Effect.flip(withRetry(attempt, { ...exact, budget: Duration.seconds(60) }, breaker)))
      yield* TestClock.adjust(0)
      // Done without the clock moving: no 5-minute waits.
      const error = yield* Fiber.join(fiber)
      expect(error).toBe(limited)
      expect(error._tag === "RateLimited" && error.retryAfterMs).toBe(600_000)
      expect(yield* Ref.get(times)).toEqual([0])
    }))

  it.effect("an opening breaker stops the retries at once instead of sleeping through them", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make("gsc", { failureThreshold: 2 })
      const { attempt, times } = yield* recorded(breaker, () => down)
      const fiber = yield* Effect.fork(Effect.flip(withRetry(attempt, exact, breaker)))
      yield* TestClock.adjust("1 second")
      // The second attempt opened it: the call ends there, at t = 1 s, with the failure that opened it.
      const error = yield* Fiber.join(fiber)
      expect(error._tag).toBe("ProviderUnavailable")
      expect(yield* Ref.get(times)).toEqual([0, 1000])
      expect((yield* breaker.health).state).toBe("open")
      // The next call fails fast.
      expect((yield* Effect.flip(withRetry(attempt, exact, breaker)))._tag).toBe("CircuitOpen")
    }))

  it.effect("a retry sleeping while another caller opens the breaker wakes at once and fails with CircuitOpen", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make("gsc", { failureThreshold: 3 })
      const { attempt, times } = yield* recorded(breaker, () => down)
      const fiber = yield* Effect.fork(Effect.flip(withRetry(attempt, { ...exact, initialDelay: Duration.seconds(10) }, breaker)))
      yield* TestClock.adjust("2 seconds")
      // Meanwhile two other calls fail: the third consecutive failure opens the breaker.
      yield* Effect.flip(breaker.protect(Effect.fail(down)))
      yield* Effect.flip(breaker.protect(Effect.fail(down)))
      yield* TestClock.adjust(0)
      const done = yield* Fiber.poll(fiber)
      expect(Option.isSome(done)).toBe(true)
      const error = yield* Fiber.join(fiber)
      expect(error._tag).toBe("CircuitOpen")
      expect(yield* Ref.get(times)).toEqual([0])
    }))

  it.effect("makes no retry while the breaker fails fast because every half-open slot is taken", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make("gsc", { failureThreshold: 1, recoveryTimeout: Duration.seconds(1) })
      yield* Effect.flip(breaker.protect(Effect.fail(down)))
      yield* TestClock.adjust("1 second")
      // A trial that never ends holds the only half-open slot.
      yield* Effect.fork(breaker.protect(Effect.never))
      yield* Effect.yieldNow()
      const count = yield* Ref.make(0)
      const error = yield* Effect.flip(withRetry(Ref.update(count, (n) => n + 1).pipe(Effect.zipRight(Effect.fail(down))), exact, breaker))
      expect(error).toBe(down)
      expect(yield* Ref.get(count)).toBe(1)
    }))
})
