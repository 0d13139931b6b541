import { readFileSync } from "node:fs"
import { WEBHOOK_EVENT_TYPES } from "../../src/domain/webhookEvents.js"
import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Clock, Duration, Effect, Redacted, Schema } from "effect"
import { pgClientLayer } from "../../src/db/Database.js"
import {
  AuthUrlPayloadJson,
  ConnectionsResponse,
  ConnectionStatusJson,
  EventsResponse,
  PlatformsResponse,
  StepFiveResponse
} from "../../src/http/schemas.js"
import { API_KEY, type Instance, startInstance, TOKEN_KEY } from "../support/app.js"
import { suiteCatalog } from "../support/catalog.js"
import { adminUrl, testPool } from "../support/database.js"
import { call, connect, json, post, rawRequest } from "../support/flow.js"
import { FRONTEND, Harness, HarnessLive } from "../support/harness.js"

const admin = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  effect.pipe(Effect.provide(pgClientLayer(Redacted.make(adminUrl()), { ...testPool, maxConnections: 1 })), Effect.orDie)

/** Whether the instance says the user is connected; null when its list and its one-platform answer disagree. */
const connectedIn = (instance: Instance, user: string, platform: string) =>
  Effect.gen(function*() {
    const all = yield* json(yield* call(instance, `/v1/users/${user}/connections`), ConnectionsResponse)
    const one = yield* json(yield* call(instance, `/v1/users/${user}/connections/${platform}`), ConnectionStatusJson)
    const listed = all.connections.find((c) => c.platform === platform)?.connected
    return listed === one.connected ? one.connected : null
  })

/** Polls `probe` every 20 ms until its value satisfies `done` or `within` has passed; returns the last value. */
const until = <A, E, R>(probe: Effect.Effect<A, E, R>, done: (value: A) => boolean, within: Duration.DurationInput) =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(within)
    let value = yield* probe
    while (!done(value) && (yield* Clock.currentTimeMillis) < deadline) {
      yield* Effect.sleep("20 millis")
      value = yield* probe
    }
    return value
  })

const authorizePath = "/v1/users/u1/connections/gsc/authorize"

/** The parts of /openapi.json the documentation tests read; schemas stay opaque until read. */
const OpenApiDocument = Schema.Struct({
  tags: Schema.Array(Schema.Struct({ name: Schema.String, description: Schema.optional(Schema.String) })),
  paths: Schema.Record({
    key: Schema.String,
    value: Schema.Record({
      key: Schema.String,
      value: Schema.Struct({
        tags: Schema.Array(Schema.String),
        description: Schema.optional(Schema.String),
        responses: Schema.Record({
          key: Schema.String,
          value: Schema.Struct({
            description: Schema.String,
            content: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Struct({ schema: Schema.Unknown }) }))
          })
        })
      })
    })
  }),
  components: Schema.Struct({ schemas: Schema.Record({ key: Schema.String, value: Schema.Unknown }) })
})

const Ref = Schema.Struct({ $ref: Schema.String })
const AnyOf = Schema.Struct({ anyOf: Schema.Array(Schema.Unknown) })
const ErrorObject = Schema.Struct({
  required: Schema.Array(Schema.String),
  properties: Schema.Struct({ _tag: Schema.Struct({ enum: Schema.Tuple(Schema.String) }) })
})

/**
 * The error answers one operation documents: status → each error's _tag → the fields its body
 * must carry, read from the schema itself (a component it refers to, or inline).
 */
const documentedErrors = (spec: typeof OpenApiDocument.Type, method: string, path: string) => {
  const operation = spec.paths[path]?.[method]
  if (operation === undefined) throw new Error(`${method} ${path} is not in the document`)
  const resolve = (schema: unknown): unknown =>
    Schema.is(Ref)(schema) ? spec.components.schemas[schema.$ref.replace("#/components/schemas/", "")] : schema
  return Object.fromEntries(Object.entries(operation.responses).filter(([status]) => Number(status) >= 400).map(([status, response]) => {
    const schema = response.content?.["application/json"]?.schema
    const members = Schema.is(AnyOf)(schema) ? schema.anyOf : [schema]
    return [status, Object.fromEntries(members.map((member) => {
      const error = Schema.decodeUnknownSync(ErrorObject)(resolve(member))
      return [error.properties._tag.enum[0], [...error.required].sort()]
    }))]
  }))
}

describe("HTTP API", () => {
  layer(HarnessLive(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("401 for a missing header, an empty key, a malformed header and an unknown key, as sent on the wire", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const cases: Array<[string | null, string]> = [
          [null, "Missing Authorization header"],
          ["", "Missing Authorization header"],
          ["Bearer   ", "Empty API key"],
          ["Bearer", "Empty API key"],
          [`Basic ${Buffer.from(`x:${API_KEY}`).toString("base64")}`, "Malformed Authorization header"],
          [`Bearer\t${API_KEY}`, "Malformed Authorization header"],
          [`Bearer ${API_KEY} extra`, "Malformed Authorization header"],
          [API_KEY, "Malformed Authorization header"],
          ["Bearer not-a-key-0123456789", "Unknown API key"]
        ]
        for (const [header, message] of cases) {
          const response = yield* rawRequest(instance, { path: "/v1/users/u1/connections", headers: header === null ? {} : { authorization: header } })
          expect(response.status, JSON.stringify(header)).toBe(401)
          expect(JSON.parse(response.body)).toMatchObject({ _tag: "Unauthorized", message: expect.stringContaining(message) })
        }
      }))

    it.effect("the Authorization scheme is case-insensitive and may be followed by several spaces (RFC 7235)", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        for (const header of [`bearer ${API_KEY}`, `BEARER ${API_KEY}`, `Bearer   ${API_KEY}`]) {
          const response = yield* rawRequest(instance, { path: "/v1/users/u1/connections", headers: { authorization: header } })
          expect(response.status, header).toBe(200)
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
        expect(Object.keys(spec["paths"] ?? {}).sort()).toEqual([
          "/health",
          "/health/providers",
          "/oauth/{platform}/callback",
          "/v1/connect/session",
          "/v1/connect/session/platforms/{platform}",
          "/v1/connect/session/platforms/{platform}/authorize",
          "/v1/connect/sessions",
          "/v1/platforms",
          "/v1/users/{user_id}/connections",
          "/v1/users/{user_id}/connections/{platform}",
          "/v1/users/{user_id}/connections/{platform}/authorize",
          "/v1/users/{user_id}/connections/{platform}/confirm",
          "/v1/users/{user_id}/connections/{platform}/import",
          "/v1/users/{user_id}/connections/{platform}/refresh",
          "/v1/users/{user_id}/connections/{platform}/token",
          "/v1/users/{user_id}/events",
          "/v1/users/{user_id}/onboarding/step-5",
          "/v1/webhooks/deliveries",
          "/v1/webhooks/deliveries/{id}/retry"
        ])
        // The webhooks the service sends, one per event type, with their payload's schema.
        const webhooks = (spec["webhooks"] ?? {}) as Record<string, { post: { requestBody: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } } }>
        expect(Object.keys(webhooks)).toEqual([...WEBHOOK_EVENT_TYPES])
        const schema = webhooks["connection.needs_reauth"]?.post.requestBody.content["application/json"]?.schema
        // The document's version is the package's; / points to the documentation.
        expect((spec["info"] as { version?: string } | undefined)?.version).toBe(JSON.parse(readFileSync("package.json", "utf8")).version)
        const root = yield* call(instance, "/", { key: null })
        expect(root.status).toBe(302)
        expect(root.headers.get("location")).toBe("/docs")
        expect(Object.keys(schema?.properties ?? {})).toEqual(["type", "id", "timestamp", "data"])
      }))

    it.effect("the OpenAPI document describes every operation and every tag it uses", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const spec = yield* json(yield* call(instance, "/openapi.json", { key: null }), OpenApiDocument)
        const tags = new Map(spec.tags.map((tag) => [tag.name, tag.description ?? ""]))
        const operations = Object.entries(spec.paths).flatMap(([path, item]) =>
          Object.entries(item).map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, operation })))
        expect(operations.length).toBeGreaterThanOrEqual(20)
        for (const { name, operation } of operations) {
          expect(operation.description?.trim() ?? "", name).not.toBe("")
          expect(operation.tags.length, name).toBeGreaterThan(0)
          for (const tag of operation.tags) expect(tags.get(tag)?.trim() ?? "", `${name}: tag ${tag}`).not.toBe("")
        }
      }))

    it.effect("the OpenAPI document lists, per operation, the errors that operation can answer, with their schemas", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const spec = yield* json(yield* call(instance, "/openapi.json", { key: null }), OpenApiDocument)
        const token = documentedErrors(spec, "get", "/v1/users/{user_id}/connections/{platform}/token")
        expect(Object.keys(token).sort()).toEqual(["400", "401", "403", "404", "409", "502", "503"])
        expect(Object.keys(token["409"] ?? {}).sort()).toEqual(["ConnectionUnreadable", "InvalidGrant", "PlatformNotConfigured", "ReauthRequired"])
        expect(token["409"]?.["ReauthRequired"]).toEqual(["_tag", "message", "platform", "status"])
        expect(Object.keys(token["503"] ?? {}).sort()).toEqual(["CircuitOpen", "DatabaseUnavailable", "ProviderUnavailable", "RateLimited", "RefreshInProgress"])
        expect(token["503"]?.["CircuitOpen"]).toEqual(["_tag", "platform", "retry_after_ms"])
        expect(token["403"]).toEqual({ Forbidden: ["_tag", "message"] })

        const authorize = documentedErrors(spec, "post", "/v1/users/{user_id}/connections/{platform}/authorize")
        expect(Object.keys(authorize).sort()).toEqual(["400", "401", "404", "409", "413", "415", "502", "503"])
        expect(authorize["400"]).toEqual({ BadRequest: ["_tag", "field", "message"], InvalidReturnTo: ["_tag", "rule"] })
        expect(authorize["401"]).toEqual({ Unauthorized: ["_tag", "message"] })
        expect(authorize["404"]).toEqual({ UnknownPlatform: ["_tag", "known", "platform"] })
        expect(authorize["409"]).toEqual({ InvalidGrant: ["_tag", "platform"], PlatformNotConfigured: ["_tag", "platform", "problems"] })

        // Operations that neither call a platform nor look one up do not document what only those give.
        expect(documentedErrors(spec, "get", "/v1/users/{user_id}/events")).toEqual({
          400: { BadRequest: ["_tag", "field", "message"] },
          401: { Unauthorized: ["_tag", "message"] },
          503: { DatabaseUnavailable: ["_tag", "message"] }
        })
        const disconnect = documentedErrors(spec, "delete", "/v1/users/{user_id}/connections/{platform}")
        expect(Object.keys(disconnect).sort()).toEqual(["400", "401", "404", "413", "415", "503"])
        expect(Object.keys(disconnect["404"] ?? {}).sort()).toEqual(["NotConnected", "UnknownPlatform"])
        // No parameter, no body, no database: nothing to refuse but the key.
        expect(documentedErrors(spec, "get", "/v1/platforms")).toEqual({ 401: { Unauthorized: ["_tag", "message"] } })
        // The connect page's calls answer the session's errors, not the API key's.
        expect(documentedErrors(spec, "get", "/v1/connect/session")).toEqual({
          401: { SessionInvalid: ["_tag", "message", "reason"] },
          503: { DatabaseUnavailable: ["_tag", "message"] }
        })
      }))

    it.effect("GET /v1/platforms lists every platform with its configuration state", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const body = yield* json(yield* call(instance, "/v1/platforms"), PlatformsResponse)
        expect(body.platforms.map((p) => [p.key, p.configured])).toEqual(suiteCatalog.map((d) => [d.key, true]))
      }))

    it.effect("authorize: return_to off the allowed origins is a 400 (no open redirect)", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        for (const returnTo of [
          "https://evil.example/steal",
          "//evil.example",
          "javascript:alert(1)",
          "JavaScript:alert(1)",
          "JAVASCRIPT:alert(1)",
          `${FRONTEND}@evil.example/`,
          `http://user:pass@app.test/`,
          "/relative/path",
          "https://app.test.evil.example/",
          "http:\\\\evil.example/",
          "\\\\evil.example",
          "/\\evil.example",
          `${FRONTEND}\\@evil.example/`
        ]) {
          const response = yield* post(instance, "/v1/users/u-open/connections/gsc/authorize", { return_to: returnTo })
          expect(response.status, returnTo).toBe(400)
          expect((yield* json(response))._tag).toBe("InvalidReturnTo")
        }
        const ok = yield* post(instance, "/v1/users/u-open/connections/gsc/authorize", { return_to: `${FRONTEND}/done?x=1` })
        expect(ok.status).toBe(200)
        const payload = yield* json(ok, AuthUrlPayloadJson)
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
          expect(yield* json(response)).toEqual({ _tag: "UnknownPlatform", platform: "myspace", known: suiteCatalog.map((d) => d.key) })
        }
      }))

    it.effect("bad path, query or body: 400 naming the field", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const cases: Array<[Response, string]> = [
          [yield* call(instance, `/v1/users/${encodeURIComponent("a b")}/connections`), "user_id"],
          [yield* call(instance, `/v1/users/${"u".repeat(201)}/connections`), "user_id"],
          [yield* call(instance, "/v1/users/u1/connections/GSC!"), "platform"],
          [yield* post(instance, authorizePath, { mode: "tab" }), "mode"],
          [yield* post(instance, authorizePath, { return_to: 42 }), "return_to"],
          [yield* post(instance, authorizePath, ["mode"]), "body"],
          [yield* call(instance, "/v1/users/u1/events?limit=100000"), "limit"]
        ]
        for (const [response, field] of cases) {
          expect(response.status, field).toBe(400)
          const body = yield* json(response)
          expect(Object.keys(body).sort(), field).toEqual(["_tag", "field", "message"])
          expect(body, field).toMatchObject({ _tag: "BadRequest", field })
        }
      }))

    it.effect("a decode error echoes at most 40 characters of the value and never the schema", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const response = yield* post(instance, authorizePath, { return_to: `${FRONTEND}/${"z".repeat(3000)}`, mode: "x".repeat(600) })
        expect(response.status).toBe(400)
        const text = yield* Effect.promise(() => response.text())
        expect(text).not.toMatch(/readonly|└─|z{41}|x{41}/)
        expect(text.length).toBeLessThan(300)
      }))

    it.effect("a user id of 200 characters is served (the router's default refuses path parameters over 100)", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const user = "u".repeat(200)
        const list = yield* call(instance, `/v1/users/${user}/connections`)
        expect(list.status).toBe(200)
        expect((yield* json(list, ConnectionsResponse)).user_id).toBe(user)
        expect((yield* post(instance, `/v1/users/${user}/connections/gsc/authorize`)).status).toBe(200)
      }))

    it.effect("authorize without a body, or with an empty one, uses the defaults", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const bare = yield* call(instance, authorizePath, { method: "POST" })
        expect(bare.status).toBe(200)
        expect((yield* json(bare, AuthUrlPayloadJson)).details.mode).toBe("redirect")
        const empty = yield* call(instance, authorizePath, { method: "POST", body: "", headers: { "content-type": "application/json" } })
        expect(empty.status).toBe(200)
      }))

    it.effect("a body that is not JSON is refused with a typed 415, never parsed, never a 500", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const part = "--x\r\nContent-Disposition: form-data; name=\"mode\"\r\n\r\npopup\r\n--x--\r\n"
        for (const [contentType, body] of [
          ["multipart/form-data", part],
          ["multipart/form-data; boundary=x", part],
          ["application/x-www-form-urlencoded", "mode=popup"],
          ["text/plain", "{}"]
        ] as const) {
          const response = yield* call(instance, authorizePath, { method: "POST", body, headers: { "content-type": contentType } })
          expect(response.status, contentType).toBe(415)
          expect((yield* json(response))._tag).toBe("UnsupportedMediaType")
        }
        const charset = yield* call(instance, authorizePath, { method: "POST", body: "{}", headers: { "content-type": "application/json; charset=utf-8" } })
        expect(charset.status).toBe(200)
      }))

    it.effect("request bodies declared over 64 KiB get 413", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const big = yield* post(instance, authorizePath, { return_to: "x".repeat(70 * 1024) })
        expect(big.status).toBe(413)
        expect((yield* json(big))._tag).toBe("PayloadTooLarge")
      }))

    it.effect("a chunked body past 64 KiB gets a clean 413 JSON answer, not a dropped connection", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const kib = Buffer.alloc(1024, "x")
        const response = yield* rawRequest(instance, {
          method: "POST",
          path: authorizePath,
          headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
          chunks: ["{\"return_to\":\"", ...Array.from({ length: 70 }, () => kib), "\"}"]
        })
        expect(response.status).toBe(413)
        expect(JSON.parse(response.body)).toMatchObject({ _tag: "PayloadTooLarge" })
      }))

    it.effect("a chunked body within 64 KiB is read as usual", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const response = yield* rawRequest(instance, {
          method: "POST",
          path: authorizePath,
          headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
          chunks: ["{\"mode\":", "\"popup\"}"]
        })
        expect(response.status).toBe(200)
        expect(JSON.parse(response.body)).toMatchObject({ details: { mode: "popup" } })
      }))

    it.effect("a body that is not JSON is a typed 400; an unknown route a typed 404", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const notJson = yield* call(instance, authorizePath, { method: "POST", body: "{oops", headers: { "content-type": "application/json" } })
        expect(notJson.status).toBe(400)
        expect(yield* json(notJson)).toEqual({ _tag: "BadRequest", field: "body", message: "The request body could not be read: send valid JSON" })
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
        const status = yield* json(yield* call(instance, "/v1/users/u1/connections/wordpress"), ConnectionStatusJson)
        expect(status).toMatchObject({ configured: false, status: "not_configured", connected: false })
      }).pipe(Effect.scoped))

    it.effect("step 5: invalid with nothing connected; valid with the connected platforms", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const before = yield* json(yield* call(instance, "/v1/users/step5/onboarding/step-5"))
        expect(before).toEqual({ valid: false, error: "At least one platform must be connected", connected_platforms: [] })
        yield* connect(instance, "step5", "wordpress")
        yield* connect(instance, "step5", "bing")
        const after = yield* json(yield* call(instance, "/v1/users/step5/onboarding/step-5"), StepFiveResponse)
        expect(after).toMatchObject({ valid: true, message: "Connected to 2 platform(s)" })
        expect(after.connected_platforms.map((p) => p.platform)).toEqual(["bing", "wordpress"])
        expect(after.connected_platforms[0]).toMatchObject({ display_name: "Bing Webmaster Tools", details: { sites: [{ url: "https://example.com/" }] } })
      }))

    it.effect("events: newest first, paged", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "events-user", "bing")
        yield* post(instance, "/v1/users/events-user/connections/bing/refresh")
        yield* call(instance, "/v1/users/events-user/connections/bing", { method: "DELETE" })
        const first = yield* json(yield* call(instance, "/v1/users/events-user/events?limit=2"), EventsResponse)
        expect(first.events.map((e) => e.kind)).toEqual(["disconnected", "refreshed"])
        const second = yield* json(yield* call(instance, `/v1/users/events-user/events?limit=2&before=${first.next_before}`), EventsResponse)
        expect(second.events.map((e) => e.kind)).toEqual(["connected"])
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
        expect(yield* connectedIn(other, "two-instances", "gsc")).toBe(false)
        yield* connect(instance, "two-instances", "gsc")
        expect(yield* until(connectedIn(other, "two-instances", "gsc"), (c) => c === true, "500 millis")).toBe(true)
        yield* call(instance, "/v1/users/two-instances/connections/gsc", { method: "DELETE" })
        expect(yield* until(connectedIn(other, "two-instances", "gsc"), (c) => c === false, "500 millis")).toBe(false)
      }).pipe(Effect.scoped))

    it.effect("an instance whose LISTEN connection is killed listens again and sees writes made elsewhere", () =>
      Effect.gen(function*() {
        const { instance, databaseUrl, env } = yield* Harness
        const other = yield* startInstance({ databaseUrl, env, settings: { frontendUrl: new URL(FRONTEND) } })
        const name = new URL(databaseUrl).pathname.slice(1)
        const listening = admin(Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql<{ pid: number }>`select pid from pg_stat_activity where datname = ${name} and query like 'LISTEN %'`))
        // Both instances listen (each on a connection of its own).
        const killed = yield* until(listening, (rows) => rows.length >= 2, "10 seconds")
        expect(killed.length).toBeGreaterThanOrEqual(2)
        // The other instance's cache is warm when its LISTEN connection dies.
        expect(yield* connectedIn(other, "relisten", "bing")).toBe(false)
        yield* admin(Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql`select pg_terminate_backend(pid) from pg_stat_activity where pid in ${sql.in(killed.map((r) => r.pid))}`))
        yield* connect(instance, "relisten", "bing")
        expect(yield* until(connectedIn(other, "relisten", "bing"), (c) => c === true, "5 seconds")).toBe(true)
        // Listening again on new connections, so that the next write shows at once.
        const fresh = Effect.map(listening, (rows) => rows.filter((r) => !killed.some((k) => k.pid === r.pid)).length)
        expect(yield* until(fresh, (n) => n === killed.length, "10 seconds")).toBe(killed.length)
        yield* call(instance, "/v1/users/relisten/connections/bing", { method: "DELETE" })
        expect(yield* until(connectedIn(other, "relisten", "bing"), (c) => c === false, "500 millis")).toBe(false)
      }).pipe(Effect.scoped))

    it.effect("/metrics exposes provider, breaker, refresh, cache and HTTP metrics in Prometheus text", () =>
      Effect.gen(function*() {
        const { instance, databaseUrl, env, fakes } = yield* Harness
        yield* connect(instance, "metrics-user", "gsc")
        // Let the connection's own change notification arrive before warming the cache.
        yield* Effect.sleep("200 millis")
        yield* call(instance, "/v1/users/metrics-user/connections")
        yield* call(instance, "/v1/users/metrics-user/connections")
        expect((yield* post(instance, "/v1/users/metrics-user/connections/gsc/refresh")).status).toBe(200)
        // A breaker transition: an instance whose Bing breaker opens at the first failure.
        const fragile = yield* startInstance({
          databaseUrl,
          env: { ...env, BING_BREAKER_FAILURE_THRESHOLD: "1", BING_RETRY_MAX: "0" },
          settings: { frontendUrl: new URL(FRONTEND) }
        })
        yield* connect(fragile, "metrics-breaker", "bing")
        fakes.bing.setBehaviour("token", "unavailable", { times: 1 })
        expect((yield* post(fragile, "/v1/users/metrics-breaker/connections/bing/refresh")).status).toBe(503)
        const response = yield* call(instance, "/metrics", { key: null })
        expect(response.headers.get("content-type")).toContain("text/plain")
        const text = yield* Effect.promise(() => response.text())
        for (const line of [
          /^# TYPE provider_calls_total counter$/m,
          /^provider_calls_total\{.*outcome="ok".*\} \d+$/m,
          /^# TYPE provider_token_endpoint_seconds histogram$/m,
          /^provider_token_endpoint_seconds_bucket\{.*le="\+Inf".*\} \d+$/m,
          /^# TYPE circuit_breaker_state gauge$/m,
          /^# TYPE token_refreshes_total counter$/m,
          /^token_refreshes_total\{.*platform="gsc".*\} [1-9]\d*$/m,
          /^# TYPE circuit_breaker_transitions_total counter$/m,
          /^circuit_breaker_transitions_total\{.*platform="bing".*\} [1-9]\d*$/m,
          /^status_cache_requests_total\{result="hit"\} \d+$/m,
          /^status_cache_requests_total\{result="miss"\} \d+$/m,
          /^http_requests_total\{method="GET",route="\/v1\/users\/\{user_id\}\/connections",status="200"\} \d+$/m,
          /^# TYPE http_request_duration_seconds histogram$/m,
          /^connection_establishment_seconds_count\{platform="gsc"\} \d+$/m
        ]) {
          expect(text).toMatch(line)
        }
        expect(text).not.toContain("metrics-user")
      }).pipe(Effect.scoped))

    it.effect("/metrics: paths that callers make up add no series", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        for (const path of ["/v1/users/u/connections/gsc/rand123", "/v1/users/u/zz1/q", "/v1/users/u/connections/nope/rand456", "/rand789.php"]) {
          yield* call(instance, path, { key: null })
        }
        const text = yield* Effect.promise(() => instance.request("/metrics", { key: null }).then((r) => r.text()))
        expect(text).not.toMatch(/rand123|zz1|rand456|rand789|nope/)
        expect(text).toMatch(/^http_requests_total\{method="GET",route="other",status="40[14]"\} \d+$/m)
      }))

    it.effect("503 RateLimited and CircuitOpen carry Retry-After in seconds and retry_after_ms in the body", () =>
      Effect.gen(function*() {
        const { databaseUrl, env, fakes } = yield* Harness
        const fragile = yield* startInstance({
          databaseUrl,
          env: { ...env, WIX_BREAKER_FAILURE_THRESHOLD: "1", WIX_BREAKER_RECOVERY_TIMEOUT: "90s", WIX_RETRY_MAX: "0" },
          settings: { frontendUrl: new URL(FRONTEND) }
        })
        yield* connect(fragile, "retry-after", "wix")
        fakes.wix.setBehaviour("token", "rate_limited", { times: 1, retryAfterSeconds: 7 })
        const limited = yield* post(fragile, "/v1/users/retry-after/connections/wix/refresh")
        expect(limited.status).toBe(503)
        expect(limited.headers.get("retry-after")).toBe("7")
        expect(yield* json(limited)).toEqual({ _tag: "RateLimited", platform: "wix", retry_after_ms: 7000 })
        const open = yield* post(fragile, "/v1/users/retry-after/connections/wix/refresh")
        expect(open.status).toBe(503)
        const body = yield* json(open)
        expect(Object.keys(body).sort()).toEqual(["_tag", "platform", "retry_after_ms"])
        expect(body).toMatchObject({ _tag: "CircuitOpen", platform: "wix" })
        const seconds = Number(open.headers.get("retry-after"))
        expect(seconds).toBe(Math.ceil(Number(body["retry_after_ms"]) / 1000))
        expect(seconds).toBeGreaterThan(80)
      }).pipe(Effect.scoped))

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
