import { createHash, randomBytes } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { type NewState, StateRepository } from "../../src/db/StateRepository.js"
import { TestDatabaseLive } from "../support/database.js"
import { failureTagged } from "../support/effects.js"
import { at } from "../support/time.js"

const newState = (overrides: Partial<NewState> = {}): NewState => ({
  stateHash: createHash("sha256").update(randomBytes(32)).digest(),
  userId: "user-1",
  platform: "gsc",
  codeVerifier: { keyId: "k1", bytes: randomBytes(60) },
  redirectUri: "https://app.example.com/oauth/gsc/callback",
  returnTo: "https://app.example.com/settings",
  mode: "redirect",
  expiresAt: at(600),
  ...overrides
})

describe("StateRepository", () => {
  layer(Layer.provideMerge(StateRepository.Default, TestDatabaseLive), { excludeTestServices: true })((it) => {
    it.effect("gives a state back once, with what was stored", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const state = newState()
        yield* repo.create(state, at(0))
        const consumed = yield* repo.consume(state.stateHash, at(60))
        expect(consumed.userId).toBe("user-1")
        expect(consumed.platform).toBe("gsc")
        expect(consumed.mode).toBe("redirect")
        expect(consumed.returnTo).toBe(state.returnTo)
        expect(Buffer.from(consumed.codeVerifier!)).toEqual(Buffer.from(state.codeVerifier!.bytes))
        const replay = yield* failureTagged(repo.consume(state.stateHash, at(61)), "InvalidState")
        expect(replay.reason).toBe("replayed")
      }))

    it.effect("of twenty concurrent consumers of one state exactly one wins", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const state = newState()
        yield* repo.create(state, at(0))
        const outcomes = yield* Effect.all(
          Array.from({ length: 20 }, () => Effect.either(repo.consume(state.stateHash, at(30)))),
          { concurrency: "unbounded" }
        )
        expect(outcomes.filter((o) => o._tag === "Right")).toHaveLength(1)
        const losers = outcomes.flatMap((o) => (o._tag === "Left" ? [o.left] : []))
        expect(losers.map((e) => e._tag === "InvalidState" && e.reason)).toEqual(Array(19).fill("replayed"))
      }))

    it.effect("refuses an expired state, which cannot be used afterwards either", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const state = newState()
        yield* repo.create(state, at(0))
        yield* failureTagged(repo.consume(state.stateHash, at(600)), "StateExpired")
        const again = yield* failureTagged(repo.consume(state.stateHash, at(10)), "InvalidState")
        expect(again.reason).toBe("replayed")
      }))

    it.effect("refuses a state it never issued, knowing nothing of its flow", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const unknown = yield* failureTagged(repo.consume(randomBytes(32), at(0)), "InvalidState")
        expect(unknown.reason).toBe("unknown")
        expect(unknown.mode).toBeUndefined()
        expect(unknown.returnTo).toBeUndefined()
      }))

    it.effect("a replayed state is refused with the mode and return_to its flow began with", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const state = newState({ mode: "popup", returnTo: "https://app.example.com/popup-opener" })
        yield* repo.create(state, at(0))
        yield* repo.consume(state.stateHash, at(1))
        const replay = yield* failureTagged(repo.consume(state.stateHash, at(2)), "InvalidState")
        expect(replay).toMatchObject({ reason: "replayed", mode: "popup", returnTo: "https://app.example.com/popup-opener" })
      }))

    it.effect("an expired state is refused with the mode and return_to its flow began with, and again when replayed", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const state = newState({ mode: "popup", returnTo: null })
        yield* repo.create(state, at(0))
        const expired = yield* failureTagged(repo.consume(state.stateHash, at(601)), "StateExpired")
        expect(expired).toMatchObject({ mode: "popup", returnTo: null })
        const again = yield* failureTagged(repo.consume(state.stateHash, at(602)), "InvalidState")
        expect(again).toMatchObject({ reason: "replayed", mode: "popup", returnTo: null })
      }))

    it.effect("purges expired states and keeps live ones", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const sql = yield* SqlClient.SqlClient
        const old = newState({ expiresAt: at(-10_000) })
        const live = newState({ expiresAt: at(100_000) })
        yield* repo.create(old, at(-20_000))
        yield* repo.create(live, at(0))
        expect(yield* repo.purgeExpired(at(0))).toBeGreaterThanOrEqual(1)
        const left = yield* sql<{ n: number }>`select count(*)::int as n from oauth_states where state_hash in (${old.stateHash}, ${live.stateHash})`
        expect(left[0]?.n).toBe(1)
      }))
  })
})
