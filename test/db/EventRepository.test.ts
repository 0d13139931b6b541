import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { EventRepository } from "../../src/db/EventRepository.js"
import { TestDatabaseLive } from "../support/database.js"
import { at } from "../support/time.js"

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
  })
})
