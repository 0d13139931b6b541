import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { EventKind } from "../../src/domain/Connection.js"
import { EventRepository } from "../../src/db/EventRepository.js"
import { TestDatabaseLive } from "../support/database.js"
import { at } from "../support/time.js"

const DAY = 86_400

/** The user's events left, as "kind@seconds" (seconds from T0), oldest first. */
const left = (userId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ kind: string; at: Date }>`select kind, at from oauth_events where user_id = ${userId} order by at, kind`).pipe(
      Effect.map((rows) => rows.map((r) => `${r.kind}@${(r.at.getTime() - at(0).getTime()) / 1000}`))
    )

const appendAll = (userId: string, events: ReadonlyArray<readonly [EventKind, number]>) =>
  Effect.flatMap(EventRepository, (repo) =>
    Effect.forEach(events, ([kind, seconds]) => repo.append({ connectionId: null, userId, platform: "gsc", kind }, at(seconds)), { discard: true }))

describe("EventRepository", () => {
  layer(Layer.provideMerge(EventRepository.Default, TestDatabaseLive), { excludeTestServices: true })((it) => {
    it.effect("lists a user's events newest first, in pages, and nobody else's", () =>
      Effect.gen(function*() {
        const repo = yield* EventRepository
        const kinds = ["connected", "refreshed", "refresh_failed", "recovered", "disconnected"] as const
        for (const [i, kind] of kinds.entries()) {
          yield* repo.append({ connectionId: null, userId: "u-events", platform: "gsc", kind, detail: { n: i } }, at(i))
        }
        yield* repo.append({ connectionId: null, userId: "someone-else", platform: "gsc", kind: "connected" }, at(9))

        const first = yield* repo.listByUser("u-events", { limit: 2 })
        expect(first.events.map((e) => e.kind)).toEqual(["disconnected", "recovered"])
        expect(first.events[0]?.detail).toEqual({ n: 4 })
        expect(first.events[0]?.at).toEqual(at(4))
        expect(first.nextBefore).not.toBeNull()
        const second = yield* repo.listByUser("u-events", { limit: 2, before: first.nextBefore! })
        expect(second.events.map((e) => e.kind)).toEqual(["refresh_failed", "refreshed"])
        const third = yield* repo.listByUser("u-events", { limit: 2, before: second.nextBefore! })
        expect(third.events.map((e) => e.kind)).toEqual(["connected"])
        expect(third.nextBefore).toBeNull()
      }))

    it.effect("deletes events of every kind older than the cutoff and keeps newer ones", () =>
      Effect.gen(function*() {
        const repo = yield* EventRepository
        yield* appendAll("u-old", [["connected", -100 * DAY], ["refreshed", -100 * DAY], ["needs_reauth", -91 * DAY], ["refreshed", -89 * DAY], ["revoked", -1]])
        expect(yield* repo.deleteBefore(at(-90 * DAY), 1000)).toBeGreaterThanOrEqual(3)
        expect(yield* left("u-old")).toEqual([`refreshed@${-89 * DAY}`, "revoked@-1"])
      }))

    it.effect("deletes refreshed events older than the cutoff and keeps newer ones and every other kind", () =>
      Effect.gen(function*() {
        const repo = yield* EventRepository
        yield* appendAll("u-refreshed", [["refreshed", -8 * DAY], ["refresh_failed", -8 * DAY], ["connected", -8 * DAY], ["refreshed", -6 * DAY]])
        expect(yield* repo.deleteRefreshedBefore(at(-7 * DAY), 1000)).toBeGreaterThanOrEqual(1)
        expect(yield* left("u-refreshed")).toEqual([`connected@${-8 * DAY}`, `refresh_failed@${-8 * DAY}`, `refreshed@${-6 * DAY}`])
      }))

    it.effect("deletes at most one batch of events per statement", () =>
      Effect.gen(function*() {
        const repo = yield* EventRepository
        yield* appendAll("u-batch", Array.from({ length: 12 }, (_, i) => ["refreshed", -1000 * DAY - i] as const))
        expect(yield* repo.deleteBefore(at(-999 * DAY), 5)).toBe(5)
        expect(yield* repo.deleteRefreshedBefore(at(-999 * DAY), 5)).toBe(5)
        expect(yield* left("u-batch")).toHaveLength(2)
      }))
  })
})
