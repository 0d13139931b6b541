import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import { makeBatcher } from "../../src/integrations/batching.js"

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

  it.scoped("submit returns at once; the batch's worker hands each answer to its continuation", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { batches, lookupMany } = recorder(gate)
      const { submit } = yield* makeBatcher(lookupMany, { workers: 1, maxBatch: 10 })
      const answers: Array<Exit.Exit<string, never>> = []
      const then = (answer: Exit.Exit<string, never>) => Effect.sync(() => void answers.push(answer))
      yield* submit("a", then)
      yield* submit("b", then)
      yield* settle
      // Both were accepted while the lookup waits for its gate: nobody waited for an answer.
      expect(answers).toEqual([])
      yield* Deferred.succeed(gate, undefined)
      yield* settle
      expect(answers).toEqual([Exit.succeed("A"), Exit.succeed("B")])
      expect(batches).toEqual([["a", "b"]])
    }))

  it.scoped("a continuation that dies is logged and the worker goes on with the next batch", () =>
    Effect.gen(function*() {
      const { lookupMany } = recorder()
      const { lookup, submit } = yield* makeBatcher(lookupMany, { workers: 1, maxBatch: 10 })
      yield* submit("a", () => Effect.die("a bug"))
      yield* settle
      expect(yield* lookup("b")).toBe("B")
    }))

  it.live("with a linger, keys that arrive while the first one lingers go in its batch", () =>
    Effect.scoped(Effect.gen(function*() {
      const { batches, lookupMany } = recorder()
      const { lookup } = yield* makeBatcher(lookupMany, { workers: 1, maxBatch: 10, lingerMs: 100 })
      const first = yield* Effect.fork(lookup("a"))
      yield* Effect.sleep("20 millis")
      expect(batches).toEqual([])
      const second = yield* Effect.fork(lookup("b"))
      expect(yield* Fiber.join(first)).toBe("A")
      expect(yield* Fiber.join(second)).toBe("B")
      expect(batches).toEqual([["a", "b"]])
    })))
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
