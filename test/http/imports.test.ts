import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Redacted, Schema } from "effect"
import { pgClientLayer } from "../../src/db/Database.js"
import { ConnectionStatusJson, EventsResponse, ImportedResponse, TokenResponseJson } from "../../src/http/schemas.js"
import { TokenMonitor } from "../../src/monitor/TokenMonitor.js"
import { API_KEY, type Instance, TOKEN_KEY } from "../support/app.js"
import { testPool } from "../support/database.js"
import { call, json } from "../support/flow.js"
import { Harness, HarnessLive } from "../support/harness.js"

const put = (instance: Instance, userId: string, platform: string, body: unknown, key: string | null = TOKEN_KEY) =>
  call(instance, `/v1/users/${userId}/connections/${platform}/import`, {
    method: "PUT",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
    key
  })

const imported = (instance: Instance, userId: string, platform: string, body: unknown) =>
  Effect.flatMap(put(instance, userId, platform, body), (response) =>
    response.status === 200
      ? json(response, ImportedResponse)
      : Effect.flatMap(Effect.promise(() => response.text()), (text) => Effect.dieMessage(`import answered ${response.status}: ${text}`)))

const statusOf = (instance: Instance, userId: string, platform: string) =>
  Effect.flatMap(call(instance, `/v1/users/${userId}/connections/${platform}`), (r) => json(r, ConnectionStatusJson))

const importedEvents = (instance: Instance, userId: string) =>
  Effect.map(
    Effect.flatMap(call(instance, `/v1/users/${userId}/events`), (r) => json(r, EventsResponse)),
    (body) => body.events.filter((e) => e.kind === "imported")
  )

const tokenOf = (instance: Instance, userId: string, platform: string) =>
  Effect.flatMap(call(instance, `/v1/users/${userId}/connections/${platform}/token`, { key: TOKEN_KEY }), (r) => json(r, TokenResponseJson))

const rowsOf = (databaseUrl: string, userId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ status: string; updatedAt: Date; accessToken: Uint8Array | null }>`select status, updated_at, access_token from oauth_connections where user_id = ${userId}`
  ).pipe(Effect.provide(pgClientLayer(Redacted.make(databaseUrl), testPool)), Effect.orDie)

const tick = (instance: Instance) => Effect.flatMap(TokenMonitor, (m) => m.tick).pipe(Effect.provide(instance.context))

const inMinutes = (n: number) => new Date(Date.now() + n * 60_000).toISOString()

const BadRequestJson = Schema.Struct({ _tag: Schema.Literal("BadRequest"), field: Schema.String, message: Schema.String })

describe("PUT /v1/users/{user_id}/connections/{platform}/import", () => {
  layer(HarnessLive(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("stores the connection sealed, reports it connected, hands out the imported token and records one imported event", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        const tokens = fakes.gsc.mint()
        const answer = yield* imported(instance, "imp-1", "gsc", {
          access_token: tokens.accessToken,
          refresh_token: tokens.refreshToken,
          token_type: "Bearer",
          expires_at: inMinutes(60),
          scope: "https://www.googleapis.com/auth/webmasters.readonly",
          account_id: "sc-domain:example.com",
          provider_data: { site: "sc-domain:example.com" }
        })
        expect(answer.outcome).toBe("created")
        expect(answer.account).toMatchObject({ account_id: "sc-domain:example.com", connected: true, status: "active" })

        const status = yield* statusOf(instance, "imp-1", "gsc")
        expect(status.status).toBe("connected")
        expect(status.details).toEqual({ site: "sc-domain:example.com" })
        expect((yield* tokenOf(instance, "imp-1", "gsc")).access_token).toBe(tokens.accessToken)

        const rows = yield* rowsOf(databaseUrl, "imp-1")
        expect(rows).toHaveLength(1)
        expect(Buffer.from(rows[0]?.accessToken ?? new Uint8Array()).includes(Buffer.from(tokens.accessToken))).toBe(false)
        const events = yield* importedEvents(instance, "imp-1")
        expect(events).toHaveLength(1)
        expect(JSON.stringify(events)).not.toContain(tokens.accessToken)
      }))

    it.effect("the same body twice changes nothing and records no second event", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        const tokens = fakes.bing.mint()
        const body = { access_token: tokens.accessToken, refresh_token: tokens.refreshToken, expires_at: inMinutes(30), provider_data: { b: 1, a: 2 } }
        expect((yield* imported(instance, "imp-2", "bing", body)).outcome).toBe("created")
        const before = yield* rowsOf(databaseUrl, "imp-2")
        // The same object with its keys in another order is the same body.
        const again = yield* imported(instance, "imp-2", "bing", { ...body, provider_data: { a: 2, b: 1 } })
        expect(again.outcome).toBe("unchanged")
        expect(yield* rowsOf(databaseUrl, "imp-2")).toEqual(before)
        expect(yield* importedEvents(instance, "imp-2")).toHaveLength(1)
      }))

    it.effect("a different body replaces the stored tokens only when it is newer than the connection's last change", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        const first = fakes.gsc.mint()
        const second = fakes.gsc.mint()
        const third = fakes.gsc.mint()
        const body = (t: typeof first, updatedAt: string) => ({ access_token: t.accessToken, refresh_token: t.refreshToken, expires_at: inMinutes(60), updated_at: updatedAt })
        expect((yield* imported(instance, "imp-3", "gsc", body(first, inMinutes(-60)))).outcome).toBe("created")

        const older = yield* imported(instance, "imp-3", "gsc", body(second, inMinutes(-120)))
        expect(older.outcome).toBe("stale")
        expect((yield* tokenOf(instance, "imp-3", "gsc")).access_token).toBe(first.accessToken)

        const newer = yield* imported(instance, "imp-3", "gsc", body(third, inMinutes(-1)))
        expect(newer.outcome).toBe("updated")
        expect((yield* tokenOf(instance, "imp-3", "gsc")).access_token).toBe(third.accessToken)
        expect(yield* importedEvents(instance, "imp-3")).toHaveLength(2)

        // Without updated_at the import is as of now: newer than anything stored.
        expect((yield* imported(instance, "imp-3", "gsc", { access_token: second.accessToken, refresh_token: second.refreshToken })).outcome).toBe("updated")
      }))

    it.effect("two imports creating the same connection at once: one creates it, the other is decided against it", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        for (let i = 0; i < 10; i++) {
          const user = `imp-race-${i}`
          const [a, b] = [fakes.gsc.mint(), fakes.gsc.mint()]
          const answers = yield* Effect.all([
            imported(instance, user, "gsc", { access_token: a.accessToken, refresh_token: a.refreshToken, expires_at: inMinutes(60), updated_at: inMinutes(-2) }),
            imported(instance, user, "gsc", { access_token: b.accessToken, refresh_token: b.refreshToken, expires_at: inMinutes(60), updated_at: inMinutes(-1) })
          ], { concurrency: 2 })
          const outcomes = answers.map((x) => x.outcome)
          expect(outcomes.filter((o) => o === "created")).toHaveLength(1)
          const writes = outcomes.filter((o) => o === "created" || o === "updated").length
          expect(yield* importedEvents(instance, user)).toHaveLength(writes)
          // The newer body wins whichever came first.
          expect((yield* tokenOf(instance, user, "gsc")).access_token).toBe(b.accessToken)
        }
      }))

    it.effect("a refresh token with an unknown expiry is refreshed by the next monitor pass", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        const tokens = fakes.gsc.mint()
        const answer = yield* imported(instance, "imp-4", "gsc", { refresh_token: tokens.refreshToken })
        expect(answer.outcome).toBe("created")
        expect(answer.account.status).toBe("active")
        yield* tick(instance)
        const status = yield* statusOf(instance, "imp-4", "gsc")
        expect(status.accounts[0]?.last_refreshed_at).not.toBeNull()
        const token = yield* tokenOf(instance, "imp-4", "gsc")
        expect(fakes.gsc.isLiveAccessToken(token.access_token)).toBe(true)
      }))

    it.effect("an access token alone with an unknown expiry is not reported connected until a monitor pass validated it", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        const alive = fakes.wordpress.mint()
        const answer = yield* imported(instance, "imp-5", "wordpress", { access_token: alive.accessToken, account_id: "blog-1" })
        expect(answer.account).toMatchObject({ connected: false, status: "unverified" })
        const waiting = yield* statusOf(instance, "imp-5", "wordpress")
        expect(waiting.connected).toBe(false)
        expect(waiting.status).toBe("unverified")
        expect((yield* call(instance, "/v1/users/imp-5/connections/wordpress/token", { key: TOKEN_KEY })).status).toBe(404)

        yield* imported(instance, "imp-5b", "wordpress", { access_token: "not-a-token-the-platform-issued", account_id: "blog-2" })
        yield* tick(instance)
        const checked = yield* statusOf(instance, "imp-5", "wordpress")
        expect(checked.status).toBe("connected")
        expect((yield* tokenOf(instance, "imp-5", "wordpress")).access_token).toBe(alive.accessToken)
        // The platform refused the other one.
        expect((yield* statusOf(instance, "imp-5b", "wordpress")).connected).toBe(false)
      }))

    it.effect("an expired access token without a refresh token is stored as needs_reauth", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        const tokens = fakes.wix.mint()
        const answer = yield* imported(instance, "imp-6", "wix", { access_token: tokens.accessToken, expires_at: inMinutes(-5) })
        expect(answer.account).toMatchObject({ connected: false, status: "needs_reauth" })
        expect((yield* statusOf(instance, "imp-6", "wix")).status).toBe("needs_reauth")
      }))

    it.effect("bad input is a 400 naming the field, and nothing is stored", () =>
      Effect.gen(function*() {
        const { instance, databaseUrl } = yield* Harness
        const cases: ReadonlyArray<readonly [unknown, string]> = [
          [{ access_token: "a", expires_at: "tomorrow" }, "expires_at"],
          [{ access_token: "a", expires_at: "2026-12-01 10:00:00" }, "expires_at"],
          [{ access_token: "" }, "access_token"],
          [{ access_token: 42 }, "access_token"],
          [{ scope: "x" }, "access_token"],
          [{ access_token: "a", updated_at: inMinutes(60 * 24) }, "updated_at"],
          [{ access_token: "a", provider_data: [1, 2] }, "provider_data"],
          [{ refresh_token: "r", account_id: "a\nb" }, "account_id"]
        ]
        for (const [body, field] of cases) {
          const response = yield* put(instance, "imp-7", "gsc", body)
          expect(response.status, JSON.stringify(body)).toBe(400)
          expect((yield* json(response, BadRequestJson)).field, JSON.stringify(body)).toBe(field)
        }
        expect(yield* rowsOf(databaseUrl, "imp-7")).toEqual([])
        expect((yield* put(instance, "imp-7", "myspace", { access_token: "a" })).status).toBe(404)
      }))

    it.effect("only a token-scope key may import: another valid key gets 403 and nothing is stored", () =>
      Effect.gen(function*() {
        const { instance, databaseUrl } = yield* Harness
        const forbidden = yield* put(instance, "imp-8", "gsc", { access_token: "a", refresh_token: "r" }, API_KEY)
        expect(forbidden.status).toBe(403)
        expect((yield* put(instance, "imp-8", "gsc", { access_token: "a" }, null)).status).toBe(401)
        expect(yield* rowsOf(databaseUrl, "imp-8")).toEqual([])
      }))
  })
})
