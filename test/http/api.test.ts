import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { pgClientLayer } from "../../src/db/Database.js"
import { adminUrl, testPool } from "../support/database.js"
import { API_KEY, startInstance, TOKEN_KEY } from "../support/app.js"
import { call, connect, json, post } from "../support/flow.js"
import { FRONTEND, Harness, HarnessLive } from "../support/harness.js"

const admin = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  effect.pipe(Effect.provide(pgClientLayer(Redacted.make(adminUrl()), { ...testPool, maxConnections: 1 })), Effect.orDie)

describe("HTTP API", () => {
  layer(HarnessLive(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("401 for a missing header, an empty key, a malformed header and an unknown key", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const cases: Array<[string | null, string]> = [
          [null, "Missing Authorization header"],
          ["Bearer ", "Malformed Authorization header"],
          ["Bearer", "Malformed Authorization header"],
          [`Basic ${Buffer.from(`x:${API_KEY}`).toString("base64")}`, "Malformed Authorization header"],
          [`Bearer  ${API_KEY}`, "Malformed Authorization header"],
          [API_KEY, "Malformed Authorization header"],
          ["Bearer not-a-key-0123456789", "Unknown API key"]
        ]
        for (const [header, message] of cases) {
          const response = yield* call(instance, "/v1/users/u1/connections", { key: null, headers: header === null ? {} : { authorization: header } })
          expect(response.status, String(header)).toBe(401)
          const body = yield* json(response)
          expect(body._tag).toBe("Unauthorized")
          expect(body.message).toContain(message)
        }
      }))

    it.effect("the fresh-token endpoint needs a token key: other valid keys get 403", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "api-403", "gsc")
        const forbidden = yield* call(instance, "/v1/users/api-403/connections/gsc/token")
        expect(forbidden.status).toBe(403)
        expect((yield* json(forbidden))._tag).toBe("Forbidden")
        expect((yield* call(instance, "/v1/users/api-403/connections/gsc/token", { key: TOKEN_KEY })).status).toBe(200)
        // A token key works everywhere else too.
        expect((yield* call(instance, "/v1/users/api-403/connections", { key: TOKEN_KEY })).status).toBe(200)
      }))

    it.effect("the callback, /health, /health/providers, /metrics, /docs and /openapi.json are public", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        for (const path of ["/health", "/health/providers", "/metrics", "/docs", "/openapi.json"]) {
          expect((yield* call(instance, path, { key: null })).status, path).toBe(200)
        }
        expect((yield* call(instance, "/oauth/gsc/callback", { key: null })).status).toBe(302)
        const docs = yield* Effect.promise(() => instance.request("/docs", { key: null }).then((r) => r.text()))
        expect(docs).toContain("<!doctype html>")
        const spec = yield* json(yield* call(instance, "/openapi.json", { key: null }))
        expect(Object.keys(spec.paths).sort()).toEqual([
          "/health",
          "/health/providers",
          "/oauth/{platform}/callback",
          "/v1/platforms",
          "/v1/users/{user_id}/connections",
          "/v1/users/{user_id}/connections/{platform}",
          "/v1/users/{user_id}/connections/{platform}/authorize",
          "/v1/users/{user_id}/connections/{platform}/refresh",
          "/v1/users/{user_id}/connections/{platform}/token",
          "/v1/users/{user_id}/events",
          "/v1/users/{user_id}/onboarding/step-5"
        ])
      }))

    it.effect("GET /v1/platforms lists every platform with its configuration state", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const body = yield* json(yield* call(instance, "/v1/platforms"))
        expect(body.platforms.map((p: { key: string; configured: boolean }) => [p.key, p.configured])).toEqual([
          ["gsc", true],
          ["bing", true],
          ["wordpress", true],
          ["wix", true]
        ])
      }))

    it.effect("authorize: return_to off the allowed origins is a 400 (no open redirect)", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        for (const returnTo of [
          "https://evil.example/steal",
          "//evil.example",
          "javascript:alert(1)",
          `${FRONTEND}@evil.example/`,
          `http://user:pass@app.test/`,
          "/relative/path",
          "https://app.test.evil.example/"
        ]) {
          const response = yield* post(instance, "/v1/users/u-open/connections/gsc/authorize", { return_to: returnTo })
          expect(response.status, returnTo).toBe(400)
          expect((yield* json(response))._tag).toBe("InvalidReturnTo")
        }
        const ok = yield* post(instance, "/v1/users/u-open/connections/gsc/authorize", { return_to: `${FRONTEND}/done?x=1` })
        expect(ok.status).toBe(200)
        const payload = yield* json(ok)
        expect(Object.keys(payload).sort()).toEqual(["auth_url", "details", "expires_at", "state"])
        expect(new Date(payload.expires_at).getTime() - Date.now()).toBeGreaterThan(9 * 60 * 1000)
      }))

    it.effect("an unknown platform is a 404 listing the known keys", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        for (const response of [
          yield* post(instance, "/v1/users/u1/connections/myspace/authorize"),
          yield* call(instance, "/v1/users/u1/connections/myspace"),
          yield* call(instance, "/v1/users/u1/connections/myspace/token", { key: TOKEN_KEY }),
          yield* call(instance, "/v1/users/u1/connections/myspace", { method: "DELETE" })
        ]) {
          expect(response.status).toBe(404)
          expect(yield* json(response)).toEqual({ _tag: "UnknownPlatform", platform: "myspace", known: ["gsc", "bing", "wordpress", "wix"] })
        }
      }))

    it.effect("bad path, query or body: 400 naming the field", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const badUser = yield* call(instance, `/v1/users/${encodeURIComponent("a b")}/connections`)
        expect(badUser.status).toBe(400)
        expect(JSON.stringify(yield* json(badUser))).toContain("user_id")
        const badPlatform = yield* call(instance, "/v1/users/u1/connections/GSC!")
        expect(badPlatform.status).toBe(400)
        expect(JSON.stringify(yield* json(badPlatform))).toContain("platform")
        const badMode = yield* post(instance, "/v1/users/u1/connections/gsc/authorize", { mode: "tab" })
        expect(badMode.status).toBe(400)
        expect(JSON.stringify(yield* json(badMode))).toContain("mode")
        const badLimit = yield* call(instance, "/v1/users/u1/events?limit=100000")
        expect(badLimit.status).toBe(400)
        expect(JSON.stringify(yield* json(badLimit))).toContain("limit")
      }))

    it.effect("request bodies declared over 64 KiB get 413", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const big = yield* post(instance, "/v1/users/u1/connections/gsc/authorize", { return_to: "x".repeat(70 * 1024) })
        expect(big.status).toBe(413)
        expect((yield* json(big))._tag).toBe("PayloadTooLarge")
      }))

    it.effect("a body that is not JSON is a typed 400; an unknown route a typed 404", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const notJson = yield* call(instance, "/v1/users/u1/connections/gsc/authorize", { method: "POST", body: "{oops", headers: { "content-type": "application/json" } })
        expect(notJson.status).toBe(400)
        expect(yield* json(notJson)).toEqual({ _tag: "BadRequest", message: "The request body could not be read: send valid JSON" })
        const nowhere = yield* call(instance, "/v2/anything")
        expect(nowhere.status).toBe(404)
        expect((yield* json(nowhere))._tag).toBe("NotFound")
      }))

    it.effect("a platform that is not configured: 409 naming the variables", () =>
      Effect.gen(function*() {
        const { databaseUrl, env } = yield* Harness
        const { WORDPRESS_CLIENT_ID: _drop, ...withoutWordpress } = env
        const instance = yield* startInstance({ databaseUrl, env: withoutWordpress, settings: { frontendUrl: new URL(FRONTEND) } })
        const response = yield* post(instance, "/v1/users/u1/connections/wordpress/authorize")
        expect(response.status).toBe(409)
        expect(yield* json(response)).toEqual({
          _tag: "PlatformNotConfigured",
          platform: "wordpress",
          problems: ["set WORDPRESS_CLIENT_ID, WORDPRESS_CLIENT_SECRET, WORDPRESS_REDIRECT_URI"]
        })
        const status = yield* json(yield* call(instance, "/v1/users/u1/connections/wordpress"))
        expect(status).toMatchObject({ configured: false, status: "not_configured", connected: false })
      }).pipe(Effect.scoped))

    it.effect("step 5: invalid with nothing connected; valid with the connected platforms", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const before = yield* json(yield* call(instance, "/v1/users/step5/onboarding/step-5"))
        expect(before).toEqual({ valid: false, error: "At least one platform must be connected", connected_platforms: [] })
        yield* connect(instance, "step5", "wordpress")
        yield* connect(instance, "step5", "bing")
        const after = yield* json(yield* call(instance, "/v1/users/step5/onboarding/step-5"))
        expect(after.valid).toBe(true)
        expect(after.message).toBe("Connected to 2 platform(s)")
        expect(after.connected_platforms.map((p: { platform: string }) => p.platform)).toEqual(["bing", "wordpress"])
        expect(after.connected_platforms[0]).toMatchObject({ display_name: "Bing Webmaster Tools", details: { sites: [{ url: "https://example.com/" }] } })
      }))

    it.effect("events: newest first, paged", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "events-user", "bing")
        yield* post(instance, "/v1/users/events-user/connections/bing/refresh")
        yield* call(instance, "/v1/users/events-user/connections/bing", { method: "DELETE" })
        const first = yield* json(yield* call(instance, "/v1/users/events-user/events?limit=2"))
        expect(first.events.map((e: { kind: string }) => e.kind)).toEqual(["disconnected", "refreshed"])
        const second = yield* json(yield* call(instance, `/v1/users/events-user/events?limit=2&before=${first.next_before}`))
        expect(second.events.map((e: { kind: string }) => e.kind)).toEqual(["connected"])
        expect(second.next_before).toBeNull()
        expect(JSON.stringify(first)).not.toMatch(/bing-at-|bing-rt-/)
      }))

    it.effect("disconnecting what is not connected: 404", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const response = yield* call(instance, "/v1/users/nobody/connections/gsc", { method: "DELETE" })
        expect(response.status).toBe(404)
        expect((yield* json(response))._tag).toBe("NotConnected")
      }))

    it.effect("two instances on one database: a connection made through one shows in the other's status despite its cache", () =>
      Effect.gen(function*() {
        const { instance, databaseUrl, env } = yield* Harness
        const other = yield* startInstance({ databaseUrl, env, settings: { frontendUrl: new URL(FRONTEND) } })
        const before = yield* json(yield* call(other, "/v1/users/two-instances/connections"))
        expect(before.connections.some((c: { connected: boolean }) => c.connected)).toBe(false)
        expect((yield* json(yield* call(other, "/v1/users/two-instances/connections/gsc"))).connected).toBe(false)
        yield* connect(instance, "two-instances", "gsc")
        const seen = yield* Effect.gen(function*() {
          for (let i = 0; i < 50; i++) {
            const all = yield* json(yield* call(other, "/v1/users/two-instances/connections"))
            const one = yield* json(yield* call(other, "/v1/users/two-instances/connections/gsc"))
            if (one.connected && all.connections.find((c: { platform: string }) => c.platform === "gsc").connected) return i
            yield* Effect.sleep("20 millis")
          }
          return -1
        })
        expect(seen).toBeGreaterThanOrEqual(0)
        expect(seen).toBeLessThan(25)
        yield* call(instance, "/v1/users/two-instances/connections/gsc", { method: "DELETE" })
        yield* Effect.sleep("200 millis")
        expect((yield* json(yield* call(other, "/v1/users/two-instances/connections/gsc"))).connected).toBe(false)
      }).pipe(Effect.scoped))

    it.effect("/metrics exposes provider, breaker, cache and HTTP metrics in Prometheus text", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "metrics-user", "gsc")
        // Let the connection's own change notification arrive before warming the cache.
        yield* Effect.sleep("200 millis")
        yield* call(instance, "/v1/users/metrics-user/connections")
        yield* call(instance, "/v1/users/metrics-user/connections")
        const response = yield* call(instance, "/metrics", { key: null })
        expect(response.headers.get("content-type")).toContain("text/plain")
        const text = yield* Effect.promise(() => response.text())
        for (const line of [
          /^# TYPE provider_calls_total counter$/m,
          /^provider_calls_total\{.*outcome="ok".*\} \d+$/m,
          /^# TYPE provider_token_endpoint_seconds histogram$/m,
          /^provider_token_endpoint_seconds_bucket\{.*le="\+Inf".*\} \d+$/m,
          /^# TYPE circuit_breaker_state gauge$/m,
          /^status_cache_requests_total\{result="hit"\} \d+$/m,
          /^status_cache_requests_total\{result="miss"\} \d+$/m,
          /^http_requests_total\{method="GET",route="\/v1\/users\/\{user_id\}\/connections",status="200"\} \d+$/m,
          /^# TYPE http_request_duration_seconds histogram$/m,
          /^connection_establishment_seconds_count\{platform="gsc"\} \d+$/m
        ]) {
          expect(text).toMatch(line)
        }
        expect(text).not.toContain("metrics-user")
      }))

    it.effect("the database down: 503 with a typed body; back: 200, without a restart", () =>
      Effect.gen(function*() {
        const { databaseUrl, env } = yield* Harness
        const instance = yield* startInstance({ databaseUrl, env, settings: { frontendUrl: new URL(FRONTEND) } })
        const name = new URL(databaseUrl).pathname.slice(1)
        expect((yield* call(instance, "/health", { key: null })).status).toBe(200)
        yield* admin(Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.all([
          sql.unsafe(`alter database ${name} allow_connections false`),
          sql.unsafe(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${name}' and pid <> pg_backend_pid()`)
        ])))
        const down = yield* call(instance, "/health", { key: null })
        expect(down.status).toBe(503)
        expect((yield* json(down))._tag).toBe("DatabaseUnavailable")
        const list = yield* call(instance, "/v1/users/db-down/connections")
        expect(list.status).toBe(503)
        const body = yield* json(list)
        expect(body).toEqual({ _tag: "DatabaseUnavailable", message: "The database is unavailable; retry later" })
        yield* admin(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`alter database ${name} allow_connections true`)))
        expect((yield* call(instance, "/health", { key: null })).status).toBe(200)
        expect((yield* call(instance, "/v1/users/db-down/connections")).status).toBe(200)
      }).pipe(Effect.scoped))
  })
})
