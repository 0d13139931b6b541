import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { ConnectionsResponse, ConnectionStatusJson, StepFiveResponse } from "../../src/http/schemas.js"
import { type Instance, TOKEN_KEY } from "../support/app.js"
import { randomKey, testSettings } from "../support/config.js"
import { call, connect, json, post } from "../support/flow.js"
import { Harness, HarnessLive } from "../support/harness.js"

/** The key the harness's instance seals with; an instance that lacks it cannot open those tokens. */
const sealingKey = testSettings().encryptionKeys[0]

const lacking = Effect.flatMap(Harness, (h) => h.startAnother({ encryptionKeys: [randomKey("k2")] }))
const restored = Effect.flatMap(Harness, (h) => h.startAnother({ encryptionKeys: [randomKey("k3"), sealingKey] }))

const statusOf = (instance: Instance, user: string, platform: string) =>
  Effect.flatMap(call(instance, `/v1/users/${user}/connections/${platform}`), (r) => json(r, ConnectionStatusJson))

const listedOf = (instance: Instance, user: string, platform: string) =>
  Effect.flatMap(call(instance, `/v1/users/${user}/connections`), (r) => json(r, ConnectionsResponse)).pipe(
    Effect.map((all) => all.connections.find((c) => c.platform === platform))
  )

const rowStatus = (instance: Instance, user: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ status: string }>`select status from oauth_connections where user_id = ${user}`).pipe(
    Effect.map((rows) => rows.map((r) => r.status)),
    Effect.provide(instance.context)
  )

const unreadableMessage = "The stored tokens cannot be decrypted with the configured TOKEN_ENCRYPTION_KEYS; restore the key or reconnect"

describe("a connection sealed under a key the instance lacks", () => {
  layer(HarnessLive(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("is reported unreadable and not connected by the platform's status, for the platform and its account", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "lost-one", "gsc")
        const status = yield* statusOf(yield* lacking, "lost-one", "gsc")
        expect(status).toMatchObject({ connected: false, status: "unreadable", error: unreadableMessage, details: {} })
        expect(status.accounts.map((a) => ({ connected: a.connected, status: a.status }))).toEqual([{ connected: false, status: "unreadable" }])
      }).pipe(Effect.scoped))

    it.effect("is reported unreadable and not connected in the list of statuses", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "lost-list", "bing")
        const listed = yield* listedOf(yield* lacking, "lost-list", "bing")
        expect(listed).toMatchObject({ connected: false, status: "unreadable", error: unreadableMessage })
        expect(listed?.accounts.map((a) => a.status)).toEqual(["unreadable"])
      }).pipe(Effect.scoped))

    it.effect("is not counted by onboarding step 5", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "lost-step5", "gsc")
        const other = yield* lacking
        const answer = yield* json(yield* call(other, "/v1/users/lost-step5/onboarding/step-5"), StepFiveResponse)
        expect(answer).toEqual({ valid: false, error: "At least one platform must be connected", connected_platforms: [] })
      }).pipe(Effect.scoped))

    it.effect("reads as connected, with its details, through the instance that sealed it and through one given the key back", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "lost-kept", "gsc")
        const back = yield* restored
        for (const reader of [instance, back]) {
          const status = yield* statusOf(reader, "lost-kept", "gsc")
          expect(status).toMatchObject({ connected: true, status: "connected", error: null })
          expect(status.accounts.map((a) => a.status)).toEqual(["active"])
          const step5 = yield* json(yield* call(reader, "/v1/users/lost-kept/onboarding/step-5"), StepFiveResponse)
          expect(step5.valid).toBe(true)
        }
      }).pipe(Effect.scoped))

    it.effect("gets 409 ConnectionUnreadable from the token endpoint, and the connection stays active", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "lost-token", "gsc")
        const response = yield* call(yield* lacking, "/v1/users/lost-token/connections/gsc/token", { key: TOKEN_KEY })
        expect(response.status).toBe(409)
        expect((yield* json(response))._tag).toBe("ConnectionUnreadable")
        expect(yield* rowStatus(instance, "lost-token")).toEqual(["active"])
      }).pipe(Effect.scoped))

    it.effect("the token endpoint hands out a readable account before a newer one sealed under a lost key", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "lost-newest", "gsc")
        // A second account of the same platform, newer, sealed under a key no instance has.
        yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql`insert into oauth_connections (user_id, platform, account_id, status, access_token, refresh_token, key_id,
                token_type, scope, expires_at, provider_data, created_at, updated_at)
              select user_id, platform, 'second', status, access_token, refresh_token, 'lost-key', token_type, scope,
                expires_at, provider_data, created_at, updated_at + interval '1 hour'
              from oauth_connections where user_id = 'lost-newest'`).pipe(Effect.provide(instance.context))
        const response = yield* call(instance, "/v1/users/lost-newest/connections/gsc/token", { key: TOKEN_KEY })
        expect(response.status).toBe(200)
        expect((yield* json(response)).account_id).toBe("")
      }))

    it.effect("gets 409 ConnectionUnreadable from the token endpoint when due for a refresh, and is not marked needs_reauth", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "lost-due", "gsc")
        yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql`update oauth_connections set expires_at = now() + interval '1 minute' where user_id = 'lost-due'`).pipe(Effect.provide(instance.context))
        const response = yield* call(yield* lacking, "/v1/users/lost-due/connections/gsc/token", { key: TOKEN_KEY })
        expect(response.status).toBe(409)
        expect((yield* json(response))._tag).toBe("ConnectionUnreadable")
        expect(yield* rowStatus(instance, "lost-due")).toEqual(["active"])
      }).pipe(Effect.scoped))

    it.effect("gets 409 ConnectionUnreadable from a forced refresh, which does not mark it needs_reauth", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "lost-refresh", "gsc")
        const response = yield* post(yield* lacking, "/v1/users/lost-refresh/connections/gsc/refresh")
        expect(response.status).toBe(409)
        expect((yield* json(response))._tag).toBe("ConnectionUnreadable")
        expect(yield* rowStatus(instance, "lost-refresh")).toEqual(["active"])
        expect((yield* statusOf(instance, "lost-refresh", "gsc")).status).toBe("connected")
      }).pipe(Effect.scoped))
  })
})
