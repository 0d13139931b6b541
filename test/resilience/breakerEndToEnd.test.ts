import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Redacted, Schema } from "effect"
import { pgClientLayer } from "../../src/db/Database.js"
import { CircuitOpen } from "../../src/domain/errors.js"
import { ConnectionStatusJson, ProvidersHealthResponse } from "../../src/http/schemas.js"
import { testPool } from "../support/database.js"
import { call, connect, json, post } from "../support/flow.js"
import { Harness, HarnessLive } from "../support/harness.js"

// Several seconds of recovery: the checks made while it is open finish well within it, even on a loaded machine.
const RECOVERY_MS = 5000

const env = {
  BING_BREAKER_FAILURE_THRESHOLD: "3",
  BING_BREAKER_RECOVERY_TIMEOUT: `${RECOVERY_MS}ms`,
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
        const bingHealth = Effect.gen(function*() {
          const body = yield* json(yield* call(instance, "/health/providers", { key: null }), ProvidersHealthResponse)
          return body.providers.find((p) => p.platform === "bing")
        })

        for (const user of users.slice(0, 3)) {
          const response = yield* refresh(user)
          expect(response.status).toBe(503)
          expect((yield* json(response))._tag).toBe("ProviderUnavailable")
        }
        const calls = fakes.bing.requestsTo("token").length
        const fast = yield* refresh("br-4")
        expect(fast.status).toBe(503)
        const open = yield* Schema.decodeUnknown(CircuitOpen)(yield* json(fast)).pipe(Effect.orDie)
        expect(open.retryAfterMs).toBeGreaterThan(0)
        expect(open.retryAfterMs).toBeLessThanOrEqual(RECOVERY_MS)
        expect(fakes.bing.requestsTo("token").length).toBe(calls)

        expect(yield* bingHealth).toMatchObject({ state: "open", health: { opened_count: 1, last_failure_kind: "ProviderUnavailable:status" } })

        const degraded = yield* json(yield* call(instance, "/v1/users/br-4/connections/bing"), ConnectionStatusJson)
        expect(degraded).toMatchObject({ connected: true, degraded: true, degraded_reason: "circuit_open" })

        const statuses = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql<{ status: string }>`select status from oauth_connections where user_id in ${sql.in(users)}`).pipe(
            Effect.provide(pgClientLayer(Redacted.make(databaseUrl), testPool)),
            Effect.orDie
          )
        expect(statuses.map((s) => s.status)).toEqual(["active", "active", "active", "active"])

        // The platform recovers. Until the recovery timeout is over every refresh fails fast
        // without reaching it; the first one after is a trial that succeeds.
        fakes.bing.setBehaviour("token", "ok")
        let recovered = yield* refresh("br-4")
        while (recovered.status !== 200) {
          expect((yield* json(recovered))._tag).toBe("CircuitOpen")
          expect(fakes.bing.requestsTo("token").length).toBe(calls)
          yield* Effect.sleep("200 millis")
          recovered = yield* refresh("br-4")
        }
        expect(fakes.bing.requestsTo("token").length).toBe(calls + 1)
        expect((yield* bingHealth)?.state).toBe("half_open")
        expect((yield* refresh("br-1")).status).toBe(200)
        expect((yield* bingHealth)?.state).toBe("closed")
      }))
  })
})
