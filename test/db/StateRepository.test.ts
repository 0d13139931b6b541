import { createHash, randomBytes } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { type NewState, StateRepository } from "../../src/db/StateRepository.js"
import { TestDatabaseLive } from "../support/database.js"
import { failureTagged } from "../support/effects.js"
import { at } from "../support/time.js"

/** OAUTH_MAX_PENDING's default. */
const MAX = 10

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

const hex = (states: ReadonlyArray<NewState>) => states.map((s) => Buffer.from(s.stateHash).toString("hex")).sort()

const hashesIn = (rows: ReadonlyArray<{ readonly stateHash: Uint8Array }>) => rows.map((r) => Buffer.from(r.stateHash).toString("hex")).sort()

/** Every stored state of the user, live or not. */
const hashesOf = (userId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ stateHash: Uint8Array }>`select state_hash from oauth_states where user_id = ${userId}`).pipe(
    Effect.map(hashesIn)
  )

/** The user's live authorisation requests for the platform: neither consumed nor expired at `now`. */
const liveOf = (userId: string, platform: string, now: Date) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ stateHash: Uint8Array }>`select state_hash from oauth_states
      where user_id = ${userId} and platform = ${platform} and consumed_at is null and expires_at > ${now}`).pipe(Effect.map(hashesIn))

describe("StateRepository", () => {
  layer(Layer.provideMerge(StateRepository.Default, TestDatabaseLive), { excludeTestServices: true })((it) => {
    it.effect("gives a state back once, with what was stored", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const state = newState()
        yield* repo.create(state, at(0), MAX)
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
        yield* repo.create(state, at(0), MAX)
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
        yield* repo.create(state, at(0), MAX)
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
        yield* repo.create(state, at(0), MAX)
        yield* repo.consume(state.stateHash, at(1))
        const replay = yield* failureTagged(repo.consume(state.stateHash, at(2)), "InvalidState")
        expect(replay).toMatchObject({ reason: "replayed", mode: "popup", returnTo: "https://app.example.com/popup-opener" })
      }))

    it.effect("an expired state is refused with the mode and return_to its flow began with, and again when replayed", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const state = newState({ mode: "popup", returnTo: null })
        yield* repo.create(state, at(0), MAX)
        const expired = yield* failureTagged(repo.consume(state.stateHash, at(601)), "StateExpired")
        expect(expired).toMatchObject({ mode: "popup", returnTo: null })
        const again = yield* failureTagged(repo.consume(state.stateHash, at(602)), "InvalidState")
        expect(again).toMatchObject({ reason: "replayed", mode: "popup", returnTo: null })
      }))

    it.effect("deletes expired states, consumed or not, and keeps live ones", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const expired = newState({ userId: "u-expiry", expiresAt: at(-10_000) })
        const consumed = newState({ userId: "u-expiry", expiresAt: at(-10_000) })
        const live = newState({ userId: "u-expiry", expiresAt: at(100_000) })
        yield* repo.create(expired, at(-20_000), MAX)
        yield* repo.create(consumed, at(-20_000), MAX)
        yield* repo.consume(consumed.stateHash, at(-15_000))
        yield* repo.create(live, at(0), MAX)
        expect(yield* repo.deleteExpired(at(0), 1000)).toBeGreaterThanOrEqual(2)
        expect(yield* hashesOf("u-expiry")).toEqual(hex([live]))
      }))

    it.effect("deletes at most one batch of expired states per statement", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const sql = yield* SqlClient.SqlClient
        yield* sql`insert into oauth_states (state_hash, user_id, platform, redirect_uri, mode, expires_at, created_at)
          select sha256(('u-batch-' || g)::bytea), 'u-batch', 'gsc', 'https://app.example.com/oauth/gsc/callback', 'redirect',
            ${at(-1000)}, ${at(-2000)}
          from generate_series(1, 25) g`
        expect(yield* repo.deleteExpired(at(0), 10)).toBe(10)
        expect(yield* hashesOf("u-batch")).toHaveLength(15)
      }))

    it.effect("keeps at most OAUTH_MAX_PENDING live requests per user and platform, the newest", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const created = Array.from({ length: 13 }, () => newState({ userId: "u-cap" }))
        for (const [i, state] of created.entries()) yield* repo.create(state, at(i), MAX)
        expect(yield* liveOf("u-cap", "gsc", at(13))).toEqual(hex(created.slice(3)))
      }))

    it.effect("a request dropped by the cap is unknown at the callback", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const created = Array.from({ length: MAX + 1 }, () => newState({ userId: "u-dropped" }))
        for (const [i, state] of created.entries()) yield* repo.create(state, at(i), MAX)
        const dropped = yield* failureTagged(repo.consume(created[0]!.stateHash, at(20)), "InvalidState")
        expect(dropped.reason).toBe("unknown")
        const newest = yield* repo.consume(created[MAX]!.stateHash, at(20))
        expect(newest.userId).toBe("u-dropped")
      }))

    it.effect("consumed and expired requests are neither counted nor dropped by the cap", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const consumed = Array.from({ length: 4 }, () => newState({ userId: "u-spent" }))
        const expired = Array.from({ length: 4 }, () => newState({ userId: "u-spent", expiresAt: at(5) }))
        for (const state of [...consumed, ...expired]) yield* repo.create(state, at(0), MAX)
        for (const state of consumed) yield* repo.consume(state.stateHash, at(1))
        const live = Array.from({ length: MAX }, () => newState({ userId: "u-spent" }))
        for (const [i, state] of live.entries()) yield* repo.create(state, at(10 + i), MAX)
        expect(yield* liveOf("u-spent", "gsc", at(30))).toEqual(hex(live))
        expect(yield* hashesOf("u-spent")).toEqual(hex([...consumed, ...expired, ...live]))
      }))

    it.effect("one user's cap drops nothing of another user or of another platform", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const other = newState({ userId: "u-neighbour" })
        const otherPlatform = newState({ userId: "u-flood", platform: "bing" })
        yield* repo.create(other, at(0), MAX)
        yield* repo.create(otherPlatform, at(0), MAX)
        for (let i = 0; i < MAX * 2; i++) yield* repo.create(newState({ userId: "u-flood" }), at(1 + i), MAX)
        expect(yield* liveOf("u-neighbour", "gsc", at(30))).toEqual(hex([other]))
        expect(yield* liveOf("u-flood", "bing", at(30))).toEqual(hex([otherPlatform]))
        expect(yield* liveOf("u-flood", "gsc", at(30))).toHaveLength(MAX)
      }))

    it.effect("forty concurrent requests for one user and platform leave exactly OAUTH_MAX_PENDING live", () =>
      Effect.gen(function*() {
        const repo = yield* StateRepository
        const created = Array.from({ length: 40 }, () => newState({ userId: "u-concurrent" }))
        yield* Effect.forEach(created, (state) => repo.create(state, at(0), MAX), { concurrency: "unbounded", discard: true })
        expect(yield* liveOf("u-concurrent", "gsc", at(1))).toHaveLength(MAX)
      }))
  })
})
