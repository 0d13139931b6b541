import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Option, Ref, TestClock } from "effect"
import { ProviderUnavailable } from "../../src/domain/errors.js"
import * as CircuitBreaker from "../../src/resilience/CircuitBreaker.js"
import * as Policy from "../../src/resilience/policy.js"
import { defaultRetrySettings } from "../../src/resilience/retry.js"

const down = new ProviderUnavailable({ platform: "acme", reason: "status", status: 503 })

/** The default settings without jitter, a 10 s budget and requests of 4 s at most. */
const policy = (failureThreshold = 5) =>
  Policy.make("acme", {
    retry: { ...defaultRetrySettings, jitter: false, budget: Duration.seconds(10) },
    breaker: { ...CircuitBreaker.defaultBreakerSettings, failureThreshold }
  }, Duration.seconds(4))

describe("resilience policy", () => {
  it.effect("its budget is RETRY_BUDGET plus the request timeout", () =>
    Effect.gen(function*() {
      expect(Duration.toMillis((yield* policy()).budget)).toBe(14_000)
    }))

  it.effect("retries an operation's transient failures only when asked", () =>
    Effect.gen(function*() {
      const p = yield* policy(100)
      const attempts = yield* Ref.make(0)
      const failing = (deadline: number) => p.request(Effect.zipRight(Ref.update(attempts, (n) => n + 1), Effect.fail(down)), deadline)
      yield* Effect.flip(p.operation(failing, { retry: false }))
      expect(yield* Ref.get(attempts)).toBe(1)
      const retried = yield* Effect.fork(Effect.flip(p.operation(failing, { retry: true })))
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(retried)
      // 1 + 3 retries, 1 s, 2 s and 4 s apart: all within the 10 s budget.
      expect(yield* Ref.get(attempts)).toBe(1 + 4)
    }))

  it.effect("each request is one breaker observation", () =>
    Effect.gen(function*() {
      const p = yield* policy(2)
      const twoRequests = (deadline: number) => Effect.zipRight(Effect.ignore(p.request(Effect.fail(down), deadline)), Effect.ignore(p.request(Effect.fail(down), deadline)))
      yield* p.operation(twoRequests, { retry: false })
      expect((yield* p.breaker.health).state).toBe("open")
    }))

  it.effect("a request that would outlast the operation's budget is cut short at its deadline", () =>
    Effect.gen(function*() {
      const p = yield* policy()
      const slow = (deadline: number) => p.request(Effect.as(Effect.sleep("20 seconds"), "late"), deadline)
      const fiber = yield* Effect.fork(Effect.flip(p.operation((deadline) => Effect.zipRight(Effect.sleep("12 seconds"), slow(deadline)), { retry: false })))
      // 12 s in, 2 s of the 14 s budget are left: the request ends there.
      yield* TestClock.adjust("13999 millis")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(fiber)).toMatchObject({ _tag: "ProviderUnavailable", reason: "timeout" })
    }))
})
