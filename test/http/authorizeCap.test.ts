import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { AuthUrlPayloadJson } from "../../src/http/schemas.js"
import type { Instance } from "../support/app.js"
import { testSettings } from "../support/config.js"
import { call, json, post } from "../support/flow.js"
import { Harness, HarnessLive } from "../support/harness.js"

/** Authorize, and let the fake platform consent; gives the query its redirect brings to the callback. */
const consent = (instance: Instance, user: string) =>
  Effect.gen(function*() {
    const payload = yield* json(yield* post(instance, `/v1/users/${user}/connections/gsc/authorize`), AuthUrlPayloadJson)
    const answer = yield* Effect.promise(() => fetch(payload.auth_url, { redirect: "manual" }))
    return new URL(answer.headers.get("location") ?? "").searchParams
  })

/** Where the callback sends the browser back, for the query the platform's redirect carried. */
const callbackLanding = (instance: Instance, query: URLSearchParams) =>
  Effect.map(
    call(instance, `/oauth/gsc/callback?${query.toString()}`, { key: null }),
    (response) => new URL(response.headers.get("location") ?? "").searchParams
  )

/** The user's live authorisation requests: neither consumed nor expired. */
const liveRequests = (instance: Instance, user: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ n: number }>`select count(*)::int as n from oauth_states where user_id = ${user} and consumed_at is null and expires_at > now()`).pipe(
      Effect.map((rows) => rows[0]?.n ?? -1),
      Effect.provide(instance.context)
    )

describe("authorisation requests are capped per user and platform (OAUTH_MAX_PENDING)", () => {
  // Callbacks connect at once: what is tested here is which states the callback still knows.
  const settings = { oauth: { ...testSettings().oauth, confirmation: "off" as const } }
  layer(HarnessLive({ settings }), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("fifty authorize calls in a row leave ten live requests, and the newest completes", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const queries: Array<URLSearchParams> = []
        for (let i = 0; i < 50; i++) queries.push(yield* consent(instance, "cap-sequential"))
        expect(yield* liveRequests(instance, "cap-sequential")).toBe(10)
        const newest = yield* callbackLanding(instance, queries[49]!)
        expect(newest.get("status")).toBe("connected")
      }))

    it.effect("a request dropped by the cap answers state_unknown at the callback", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const oldest = yield* consent(instance, "cap-dropped")
        for (let i = 0; i < 10; i++) yield* consent(instance, "cap-dropped")
        const landing = yield* callbackLanding(instance, oldest)
        expect(landing.get("status")).toBe("error")
        expect(landing.get("reason")).toBe("state_unknown")
      }))

    it.effect("fifty authorize calls at once leave ten live requests", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const answers = yield* Effect.all(
          Array.from({ length: 50 }, () => post(instance, "/v1/users/cap-concurrent/connections/gsc/authorize")),
          { concurrency: "unbounded" }
        )
        expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200))
        expect(yield* liveRequests(instance, "cap-concurrent")).toBe(10)
      }))

    it.effect("the cap is OAUTH_MAX_PENDING", () =>
      Effect.gen(function*() {
        const { startAnother } = yield* Harness
        const instance = yield* startAnother({ oauth: { ...settings.oauth, maxPending: 3 } })
        for (let i = 0; i < 5; i++) expect((yield* post(instance, "/v1/users/cap-setting/connections/gsc/authorize")).status).toBe(200)
        expect(yield* liveRequests(instance, "cap-setting")).toBe(3)
      }).pipe(Effect.scoped))
  })
})
