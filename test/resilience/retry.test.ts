import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Ref, TestClock } from "effect"
import { InvalidGrant, ProviderUnavailable, RateLimited } from "../../src/domain/errors.js"
import * as CircuitBreaker from "../../src/resilience/CircuitBreaker.js"
import { once, type RetrySettings, withRetry } from "../../src/resilience/retry.js"

const exact: RetrySettings = {
  retries: 3,
  initialDelay: Duration.seconds(1),
  factor: 2,
  maxDelay: Duration.seconds(30),
  jitter: false
}
const down = new ProviderUnavailable({ platform: "gsc", reason: "status", status: 503 })

/** Runs `attempt` with retries in a fiber, advancing the TestClock far enough; returns attempt times. */
const run = <E>(
  failWith: (n: number) => E | undefined,
  settings: RetrySettings,
  breakerSettings: Partial<CircuitBreaker.BreakerSettings> = { failureThreshold: 100 }
) =>
  Effect.gen(function*() {
    const breaker = yield* CircuitBreaker.make("gsc", breakerSettings)
    const times = yield* Ref.make<ReadonlyArray<number>>([])
    const attempt = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const n = (yield* Ref.updateAndGet(times, (t) => [...t, now])).length
      const error = failWith(n)
      return error === undefined ? "ok" : yield* Effect.fail(error)
    })
    const fiber = yield* Effect.fork(Effect.either(withRetry(attempt, settings, breaker)))
    yield* TestClock.adjust("10 minutes")
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

  it.effect("an opening breaker stops the retries at once instead of sleeping through them", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make("gsc", { failureThreshold: 2 })
      const times = yield* Ref.make<ReadonlyArray<number>>([])
      const attempt = Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.update(times, (t) => [...t, now])).pipe(Effect.zipRight(Effect.fail(down)))
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

  it.effect("a code exchange runs once, never retried", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make("gsc")
      const count = yield* Ref.make(0)
      const error = yield* Effect.flip(once(Ref.update(count, (n) => n + 1).pipe(Effect.zipRight(Effect.fail(down))), breaker))
      expect(error._tag).toBe("ProviderUnavailable")
      expect(yield* Ref.get(count)).toBe(1)
    }))
})
