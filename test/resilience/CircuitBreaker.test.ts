import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Ref, TestClock } from "effect"
import { InvalidGrant, ProviderUnavailable, RateLimited } from "../../src/domain/errors.js"
import * as CircuitBreaker from "../../src/resilience/CircuitBreaker.js"

const down = new ProviderUnavailable({ platform: "gsc", reason: "status", status: 503 })

/** A breaker and a counter of how many calls actually ran. */
const setup = (settings: Partial<CircuitBreaker.BreakerSettings> = {}) =>
  Effect.gen(function*() {
    const breaker = yield* CircuitBreaker.make("gsc", settings)
    const runs = yield* Ref.make(0)
    const call = <A, E>(effect: Effect.Effect<A, E>) => breaker.protect(Ref.update(runs, (n) => n + 1).pipe(Effect.zipRight(effect)))
    const fail = call(Effect.fail(down))
    const succeed = call(Effect.succeed("ok"))
    return { breaker, runs, call, fail, succeed }
  })

const state = (breaker: CircuitBreaker.CircuitBreaker) => Effect.map(breaker.health, (h) => h.state)

describe("circuit breaker", () => {
  it.effect("stays closed through failure_threshold - 1 consecutive failures and opens on the next", () =>
    Effect.gen(function*() {
      const { breaker, fail } = yield* setup()
      for (let i = 0; i < 4; i++) yield* Effect.flip(fail)
      expect(yield* state(breaker)).toBe("closed")
      expect((yield* breaker.health).consecutiveFailures).toBe(4)
      yield* Effect.flip(fail)
      const health = yield* breaker.health
      expect(health.state).toBe("open")
      expect(health.openedCount).toBe(1)
      expect(health.retryAfterMs).toBe(60_000)
    }))

  it.effect("a success resets the count of consecutive failures", () =>
    Effect.gen(function*() {
      const { breaker, fail, succeed } = yield* setup()
      for (let i = 0; i < 4; i++) yield* Effect.flip(fail)
      yield* succeed
      for (let i = 0; i < 4; i++) yield* Effect.flip(fail)
      expect(yield* state(breaker)).toBe("closed")
    }))

  it.effect("fails fast while open, without running the call", () =>
    Effect.gen(function*() {
      const { runs, fail, succeed } = yield* setup()
      for (let i = 0; i < 5; i++) yield* Effect.flip(fail)
      yield* TestClock.adjust("10 seconds")
      const error = yield* Effect.flip(succeed)
      expect(error._tag).toBe("CircuitOpen")
      expect(error._tag === "CircuitOpen" && error.retryAfterMs).toBe(50_000)
      expect(yield* Ref.get(runs)).toBe(5)
    }))

  it.effect("admits a trial after exactly recovery_timeout and not a millisecond before", () =>
    Effect.gen(function*() {
      const { breaker, runs, fail, succeed } = yield* setup()
      for (let i = 0; i < 5; i++) yield* Effect.flip(fail)
      yield* TestClock.adjust(Duration.millis(59_999))
      const early = yield* Effect.flip(succeed)
      expect(early._tag === "CircuitOpen" && early.retryAfterMs).toBe(1)
      expect(yield* Ref.get(runs)).toBe(5)
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* succeed).toBe("ok")
      expect(yield* Ref.get(runs)).toBe(6)
      const health = yield* breaker.health
      expect(health.state).toBe("half_open")
      expect(health.halfOpenSuccesses).toBe(1)
    }))

  it.effect("closes after success_threshold successful trials", () =>
    Effect.gen(function*() {
      const { breaker, fail, succeed } = yield* setup()
      for (let i = 0; i < 5; i++) yield* Effect.flip(fail)
      yield* TestClock.adjust("60 seconds")
      yield* succeed
      yield* succeed
      expect(yield* state(breaker)).toBe("half_open")
      yield* succeed
      const health = yield* breaker.health
      expect(health.state).toBe("closed")
      expect(health.consecutiveFailures).toBe(0)
    }))

  it.effect("one failure in half-open reopens it for a new recovery window", () =>
    Effect.gen(function*() {
      const { breaker, fail, succeed } = yield* setup()
      for (let i = 0; i < 5; i++) yield* Effect.flip(fail)
      yield* TestClock.adjust("60 seconds")
      yield* succeed
      yield* Effect.flip(fail)
      const health = yield* breaker.health
      expect(health.state).toBe("open")
      expect(health.openedCount).toBe(2)
      expect(health.retryAfterMs).toBe(60_000)
    }))

  for (const max of [1, 3]) {
    it.effect(`half-open admits exactly ${max} of 20 concurrent callers`, () =>
      Effect.gen(function*() {
        const { breaker, runs, call, fail } = yield* setup({ halfOpenMaxCalls: max })
        for (let i = 0; i < 5; i++) yield* Effect.flip(fail)
        yield* TestClock.adjust("60 seconds")
        const gate = yield* Deferred.make<void>()
        const fibers = yield* Effect.forEach(
          Array.from({ length: 20 }),
          () => Effect.fork(Effect.exit(call(Deferred.await(gate)))),
          { concurrency: "unbounded" }
        )
        yield* Effect.yieldNow()
        yield* Deferred.succeed(gate, undefined)
        const exits = yield* Effect.forEach(fibers, Fiber.join)
        expect(exits.filter(Exit.isSuccess)).toHaveLength(max)
        expect(exits.filter(Exit.isFailure)).toHaveLength(20 - max)
        expect(yield* Ref.get(runs)).toBe(5 + max)
        expect((yield* breaker.health).state).toBe(max >= 3 ? "closed" : "half_open")
      }))
  }

  it.effect("an interrupted trial frees its half-open slot", () =>
    Effect.gen(function*() {
      const { call, fail, succeed } = yield* setup()
      for (let i = 0; i < 5; i++) yield* Effect.flip(fail)
      yield* TestClock.adjust("60 seconds")
      const trial = yield* Effect.fork(call(Effect.never))
      yield* Effect.yieldNow()
      expect((yield* Effect.flip(succeed))._tag).toBe("CircuitOpen")
      yield* Fiber.interrupt(trial)
      expect(yield* succeed).toBe("ok")
    }))

  it.effect("terminal errors for 50 users leave it closed", () =>
    Effect.gen(function*() {
      const { breaker, call } = yield* setup()
      for (let user = 0; user < 50; user++) {
        yield* Effect.flip(call(Effect.fail(new InvalidGrant({ platform: "gsc", description: `user ${user}` }))))
      }
      const health = yield* breaker.health
      expect(health.state).toBe("closed")
      expect(health.consecutiveFailures).toBe(0)
      expect(health.lastFailureKind).toBeNull()
    }))

  it.effect("counts rate limiting and timeouts, and records the last failure", () =>
    Effect.gen(function*() {
      const { breaker, call } = yield* setup({ failureThreshold: 2 })
      yield* TestClock.adjust("5 seconds")
      yield* Effect.flip(call(Effect.fail(new RateLimited({ platform: "gsc", retryAfterMs: 1000 }))))
      yield* Effect.flip(call(Effect.fail(new ProviderUnavailable({ platform: "gsc", reason: "timeout" }))))
      const health = yield* breaker.health
      expect(health.state).toBe("open")
      expect(health.lastFailureAt).toEqual(new Date(5000))
      expect(health.lastFailureKind).toBe("ProviderUnavailable:timeout")
    }))

  it.effect("a defect does not count as a failure", () =>
    Effect.gen(function*() {
      const { breaker, call } = yield* setup({ failureThreshold: 1 })
      yield* Effect.exit(call(Effect.die("bug")))
      expect(yield* state(breaker)).toBe("closed")
    }))
})
