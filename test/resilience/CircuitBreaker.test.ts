import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Metric, Option, Ref, TestClock } from "effect"
import { InvalidClient, InvalidGrant, ProviderResponseInvalid, ProviderUnavailable, RateLimited } from "../../src/domain/errors.js"
import { withTags } from "../../src/observability/labels.js"
import { breakerTransitions } from "../../src/observability/metrics.js"
import * as CircuitBreaker from "../../src/resilience/CircuitBreaker.js"

const down = new ProviderUnavailable({ platform: "gsc", reason: "status", status: 503 })

/** A breaker and a counter of how many calls actually ran. */
const setup = (settings: Partial<CircuitBreaker.BreakerSettings> = {}, name = "gsc") =>
  Effect.gen(function*() {
    const breaker = yield* CircuitBreaker.make(name, settings)
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

  it.effect("keeps the count of failures that opened it visible while open", () =>
    Effect.gen(function*() {
      const { breaker, fail } = yield* setup()
      for (let i = 0; i < 5; i++) yield* Effect.flip(fail)
      yield* TestClock.adjust("30 seconds")
      expect(yield* breaker.health).toMatchObject({ state: "open", consecutiveFailures: 5 })
    }))

  it.effect("a failure combined with a defect in half-open reopens it instead of freeing the slot", () =>
    Effect.gen(function*() {
      const { breaker, call } = yield* setup()
      for (let i = 0; i < 5; i++) yield* Effect.flip(call(Effect.fail(down)))
      yield* TestClock.adjust("60 seconds")
      yield* Effect.exit(call(Effect.failCause(Cause.sequential(Cause.fail(down), Cause.die("bug")))))
      expect(yield* breaker.health).toMatchObject({ state: "open", openedCount: 2 })
    }))

  it.effect("records the last non-transient error beside the last transient failure, but not a user's invalid_grant", () =>
    Effect.gen(function*() {
      const { breaker, call } = yield* setup()
      yield* Effect.flip(call(Effect.fail(down)))
      yield* TestClock.adjust("1 second")
      yield* Effect.flip(call(Effect.fail(new InvalidClient({ platform: "gsc", error: "invalid_client" }))))
      yield* TestClock.adjust("1 second")
      yield* Effect.flip(call(Effect.fail(new InvalidGrant({ platform: "gsc" }))))
      const health = yield* breaker.health
      expect(health).toMatchObject({
        state: "closed",
        consecutiveFailures: 0,
        lastFailureAt: new Date(0),
        lastFailureKind: "ProviderUnavailable:status",
        lastErrorAt: new Date(1000),
        lastErrorKind: "InvalidClient:invalid_client"
      })
      yield* Effect.flip(call(Effect.fail(new ProviderResponseInvalid({ platform: "gsc", detail: "html" }))))
      expect((yield* breaker.health).lastErrorKind).toBe("ProviderResponseInvalid")
    }))

  it.effect("fails fast while open and while half open with every trial slot taken, not otherwise", () =>
    Effect.gen(function*() {
      const { breaker, call, fail } = yield* setup()
      expect(yield* breaker.failsFast).toBe(false)
      for (let i = 0; i < 5; i++) yield* Effect.flip(fail)
      expect(yield* breaker.failsFast).toBe(true)
      yield* TestClock.adjust("60 seconds")
      // The recovery timeout is over: the next call would be let through.
      expect(yield* breaker.failsFast).toBe(false)
      const trial = yield* Effect.fork(call(Effect.never))
      yield* Effect.yieldNow()
      expect(yield* state(breaker)).toBe("half_open")
      expect(yield* breaker.failsFast).toBe(true)
      yield* Fiber.interrupt(trial)
      expect(yield* breaker.failsFast).toBe(false)
    }))

  it.effect("signals an opening to whoever waits for it, and at once once open", () =>
    Effect.gen(function*() {
      const { breaker, fail } = yield* setup({ failureThreshold: 2 })
      const waiter = yield* Effect.fork(breaker.opened)
      yield* Effect.flip(fail)
      yield* Effect.yieldNow()
      expect(Option.isNone(yield* Fiber.poll(waiter))).toBe(true)
      yield* Effect.flip(fail)
      yield* Fiber.join(waiter)
      yield* breaker.opened
    }))

  it.effect("counts each transition in circuit_breaker_transitions_total, tagged with the platform", () =>
    Effect.gen(function*() {
      const name = "transitions-test"
      const count = (from: string, to: string) =>
        Effect.map(Metric.value(withTags(breakerTransitions, { platform: name, from, to })), (s) => s.count)
      const { fail, succeed } = yield* setup({ failureThreshold: 1, successThreshold: 1 }, name)
      yield* Effect.flip(fail)
      yield* TestClock.adjust("60 seconds")
      yield* Effect.flip(fail)
      yield* TestClock.adjust("60 seconds")
      yield* succeed
      expect(yield* count("closed", "open")).toBe(1)
      expect(yield* count("open", "half_open")).toBe(2)
      expect(yield* count("half_open", "open")).toBe(1)
      expect(yield* count("half_open", "closed")).toBe(1)
    }))

  it.effect("a call let through is told to `settled` with how it ended and how long it took, once the breaker has counted it", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make("gsc", { failureThreshold: 1 })
      const told: Array<readonly [string, number, string]> = []
      const settled = (exit: Exit.Exit<unknown, unknown>, elapsedMs: number) =>
        Effect.flatMap(state(breaker), (now) => Effect.sync(() => void told.push([Exit.isSuccess(exit) ? "success" : "failure", elapsedMs, now])))
      const fiber = yield* Effect.fork(breaker.protect(Effect.zipRight(Effect.sleep("3 seconds"), Effect.fail(down)), settled))
      yield* TestClock.adjust("3 seconds")
      yield* Effect.flip(Fiber.join(fiber))
      // Counted before it was told: the failure has opened the breaker.
      expect(told).toEqual([["failure", 3000, "open"]])
      // A call refused at once was not let through: nothing to tell.
      yield* Effect.flip(breaker.protect(Effect.succeed("never"), settled))
      expect(told).toHaveLength(1)
    }))
})
