import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Option, Queue, TestClock } from "effect"
import { gather, makeBatcher } from "../../src/db/batching.js"

/** A batched lookup that records each batch and, when `gate` is given, waits for it first. */
const recorder = (gate?: Deferred.Deferred<void>) => {
  const batches: Array<ReadonlyArray<string>> = []
  const lookupMany = (keys: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      batches.push(keys)
      if (gate !== undefined) yield* Deferred.await(gate)
      return (key: string) => key.toUpperCase()
    })
  return { batches, lookupMany }
}

/** Lets every forked fiber run until it waits (no clock involved). */
const settle = Effect.repeatN(Effect.yieldNow(), 50)

describe("makeBatcher", () => {
  it.scoped("answers a lookup made alone in a batch of its own", () =>
    Effect.gen(function*() {
      const { batches, lookupMany } = recorder()
      const { lookup } = yield* makeBatcher(lookupMany, { workers: 2, maxBatch: 10 })
      expect(yield* lookup("a")).toBe("A")
      expect(batches).toEqual([["a"]])
    }))

  it.scoped("lookups made while every worker is busy go together in the next batch, each with its own answer", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { batches, lookupMany } = recorder(gate)
      const { lookup } = yield* makeBatcher(lookupMany, { workers: 1, maxBatch: 10 })
      const first = yield* Effect.fork(lookup("a"))
      yield* settle
      const rest = yield* Effect.fork(Effect.all(["b", "c", "d", "e"].map(lookup), { concurrency: "unbounded" }))
      yield* settle
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(first)).toBe("A")
      expect(yield* Fiber.join(rest)).toEqual(["B", "C", "D", "E"])
      expect(batches).toEqual([["a"], ["b", "c", "d", "e"]])
    }))

  it.scoped("a batch holds at most maxBatch keys", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { batches, lookupMany } = recorder(gate)
      const { lookup } = yield* makeBatcher(lookupMany, { workers: 1, maxBatch: 2 })
      const first = yield* Effect.fork(lookup("a"))
      yield* settle
      const rest = yield* Effect.fork(Effect.all(["b", "c", "d", "e", "f"].map(lookup), { concurrency: "unbounded" }))
      yield* settle
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      expect(yield* Fiber.join(rest)).toEqual(["B", "C", "D", "E", "F"])
      expect(batches).toEqual([["a"], ["b", "c"], ["d", "e"], ["f"]])
    }))

  it.scoped("a failed batch fails every lookup in it, and the next batch runs", () =>
    Effect.gen(function*() {
      let calls = 0
      const { lookup } = yield* makeBatcher(
        (keys: ReadonlyArray<string>) => {
          calls++
          return calls === 1 ? Effect.fail(`down for ${keys.join(",")}`) : Effect.succeed((key: string) => key.toUpperCase())
        },
        { workers: 1, maxBatch: 10 }
      )
      expect(yield* Effect.exit(lookup("a"))).toEqual(Exit.fail("down for a"))
      expect(yield* lookup("b")).toBe("B")
    }))

  it.effect("gather with a linger takes what arrives while the first item lingers, on the Clock", () =>
    Effect.gen(function*() {
      const queue = yield* Queue.unbounded<string>()
      const batch = yield* Effect.fork(gather(queue, 10, Duration.millis(100)))
      yield* Queue.offer(queue, "a")
      yield* TestClock.adjust("20 millis")
      yield* Queue.offer(queue, "b")
      expect(Option.isNone(yield* Fiber.poll(batch))).toBe(true)
      yield* TestClock.adjust("80 millis")
      expect(yield* Fiber.join(batch)).toEqual(["a", "b"])
    }))
})

describe("makeBatcher with failsWaiting", () => {
  /** A lookup that waits for `gate`, then fails its first batch with `error` and answers the others. */
  const failingFirst = (gate: Deferred.Deferred<void>, error: string) => {
    const batches: Array<ReadonlyArray<string>> = []
    const lookupMany = (keys: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        batches.push(keys)
        if (batches.length > 1) return (key: string) => key.toUpperCase()
        yield* Deferred.await(gate)
        return yield* Effect.fail(error)
      })
    return { batches, lookupMany }
  }

  it.scoped("a batch failing with such an error fails the lookups waiting behind it at once, without running them", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { batches, lookupMany } = failingFirst(gate, "unavailable")
      const { lookup } = yield* makeBatcher(lookupMany, { workers: 1, maxBatch: 10, failsWaiting: (e) => e === "unavailable" })
      const first = yield* Effect.fork(lookup("a"))
      yield* settle
      const waiting = yield* Effect.fork(Effect.all(["b", "c"].map((k) => Effect.exit(lookup(k))), { concurrency: "unbounded" }))
      yield* settle
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Effect.exit(Fiber.join(first))).toEqual(Exit.fail("unavailable"))
      expect(yield* Fiber.join(waiting)).toEqual([Exit.fail("unavailable"), Exit.fail("unavailable")])
      expect(batches).toEqual([["a"]])
      // Later lookups are batched as before.
      expect(yield* lookup("d")).toBe("D")
    }))

  it.scoped("a batch failing with another error leaves the lookups waiting behind it to their own batch", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { batches, lookupMany } = failingFirst(gate, "bad row")
      const { lookup } = yield* makeBatcher(lookupMany, { workers: 1, maxBatch: 10, failsWaiting: (e) => e === "unavailable" })
      const first = yield* Effect.fork(Effect.exit(lookup("a")))
      yield* settle
      const waiting = yield* Effect.fork(Effect.all(["b", "c"].map(lookup), { concurrency: "unbounded" }))
      yield* settle
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(first)).toEqual(Exit.fail("bad row"))
      expect(yield* Fiber.join(waiting)).toEqual(["B", "C"])
      expect(batches).toEqual([["a"], ["b", "c"]])
    }))
})
