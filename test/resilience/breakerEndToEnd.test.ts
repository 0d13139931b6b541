import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { pgClientLayer } from "../../src/db/Database.js"
import { testPool } from "../support/database.js"
import { call, connect, json, post } from "../support/flow.js"
import { Harness, HarnessLive } from "../support/harness.js"

const env = {
  BING_BREAKER_FAILURE_THRESHOLD: "3",
  BING_BREAKER_RECOVERY_TIMEOUT: "300ms",
  BING_BREAKER_SUCCESS_THRESHOLD: "2",
  BING_RETRY_MAX: "0"
}

describe("circuit breaker against a failing platform over real HTTP", () => {
  layer(HarnessLive({ env }), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("503s open it after the threshold; it fails fast while open, recovers with the platform; connections keep their status", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        const users = ["br-1", "br-2", "br-3", "br-4"]
        for (const user of users) yield* connect(instance, user, "bing")
        fakes.bing.setBehaviour("token", "unavailable")
        const refresh = (user: string) => post(instance, `/v1/users/${user}/connections/bing/refresh`)

        for (const user of users.slice(0, 3)) {
          const response = yield* refresh(user)
          expect(response.status).toBe(503)
          expect((yield* json(response))._tag).toBe("ProviderUnavailable")
        }
        const calls = fakes.bing.requestsTo("token").length
        const fast = yield* refresh("br-4")
        expect(fast.status).toBe(503)
        const body = yield* json(fast)
        expect(body._tag).toBe("CircuitOpen")
        expect(body.retryAfterMs).toBeGreaterThan(0)
        expect(fakes.bing.requestsTo("token").length).toBe(calls)

        const health = yield* json(yield* call(instance, "/health/providers", { key: null }))
        const bing = health.providers.find((p: { platform: string }) => p.platform === "bing")
        expect(bing).toMatchObject({ state: "open", health: { opened_count: 1, last_failure_kind: "ProviderUnavailable:status" } })

        const degraded = yield* json(yield* call(instance, "/v1/users/br-4/connections/bing"))
        expect(degraded).toMatchObject({ connected: true, degraded: true, degraded_reason: "circuit_open" })

        const statuses = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql<{ status: string }>`select status from oauth_connections where user_id in ${sql.in(users)}`).pipe(
            Effect.provide(pgClientLayer(Redacted.make(databaseUrl), testPool)),
            Effect.orDie
          )
        expect(statuses.map((s) => s.status)).toEqual(["active", "active", "active", "active"])

        fakes.bing.setBehaviour("token", "ok")
        yield* Effect.sleep("350 millis")
        expect((yield* refresh("br-4")).status).toBe(200)
        expect((yield* json(yield* call(instance, "/health/providers", { key: null }))).providers.find((p: { platform: string }) => p.platform === "bing").state).toBe("half_open")
        expect((yield* refresh("br-1")).status).toBe(200)
        const closed = yield* json(yield* call(instance, "/health/providers", { key: null }))
        expect(closed.providers.find((p: { platform: string }) => p.platform === "bing").state).toBe("closed")
      }))
  })
})
