import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Grants } from "../../src/integrations/Grants.js"
import { TokenMonitor } from "../../src/monitor/TokenMonitor.js"
import { AuthUrlPayloadJson, ConnectionStatusJson, TokenResponseJson } from "../../src/http/schemas.js"
import { type Instance, TOKEN_KEY } from "../support/app.js"
import { testSettings } from "../support/config.js"
import { call, confirm, connect, json, post } from "../support/flow.js"
import { FRONTEND, Harness, HarnessLive } from "../support/harness.js"

/**
 * One flow as a browser makes it: `flowUser`'s session asks for the authorisation URL (the
 * application's back end calls authorize for the user logged in), whoever holds the URL
 * consents at the fake platform, and the callback sends the browser back: its landing URL.
 */
const authorise = (instance: Instance, flowUser: string, platform: string, extra: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const payload = yield* json(
      yield* post(instance, `/v1/users/${flowUser}/connections/${platform}/authorize`, { return_to: `${FRONTEND}/integrations`, ...extra }),
      AuthUrlPayloadJson
    )
    const consent = yield* Effect.promise(() => fetch(payload.auth_url, { redirect: "manual" }))
    const back = new URL(consent.headers.get("location") ?? "")
    const callback = yield* call(instance, `/oauth/${platform}/callback${back.search}`, { key: null })
    return { callback, landing: new URL(callback.headers.get("location") ?? `${FRONTEND}/none`) }
  })

const statusOf = (instance: Instance, user: string, platform: string) =>
  Effect.flatMap(call(instance, `/v1/users/${user}/connections/${platform}`), (r) => json(r, ConnectionStatusJson))

const sql = <A>(instance: Instance, run: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.flatMap(SqlClient.SqlClient, run).pipe(Effect.provide(instance.context), Effect.orDie)

const eventKinds = (instance: Instance, user: string) =>
  sql(instance, (s) => s<{ kind: string }>`select kind from oauth_events where user_id = ${user} order by id`).pipe(Effect.map((rows) => rows.map((r) => r.kind)))

const pendingCount = (instance: Instance) =>
  sql(instance, (s) => s<{ n: number }>`select count(*)::int as n from oauth_pending_grants`).pipe(Effect.map((rows) => rows[0]?.n ?? -1))

describe("confirming who completed the flow", () => {
  layer(HarnessLive(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("a forwarded authorisation URL: the victim's grant, confirmed for the victim, is refused and revoked, and neither user is connected", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        const revokesBefore = fakes.gsc.requestsTo("revoke").length
        // The attacker asks for an authorisation URL for their own account and sends it to the victim, who consents.
        const { callback, landing } = yield* authorise(instance, "attacker", "gsc")
        expect(callback.status).toBe(302)
        expect(landing.searchParams.get("status")).toBe("pending")
        const code = landing.searchParams.get("confirmation") ?? ""
        const issued = fakes.gsc.liveTokens()
        // The application's back end confirms for the user logged in where the browser landed: the victim.
        const refused = yield* confirm(instance, "victim", "gsc", code)
        expect(refused.status).toBe(403)
        expect(yield* json(refused)).toMatchObject({ _tag: "ConfirmationRefused", platform: "gsc" })
        expect(fakes.gsc.requestsTo("revoke")).toHaveLength(revokesBefore + 1)
        // The grant is dead at the platform: nothing issued for it still works.
        const stillLive = fakes.gsc.liveTokens()
        expect(issued.filter((t) => stillLive.includes(t)).length).toBeLessThan(issued.length)
        for (const user of ["attacker", "victim"]) {
          const status = yield* statusOf(instance, user, "gsc")
          expect(status.connected, user).toBe(false)
          expect((yield* call(instance, `/v1/users/${user}/connections/gsc/token`, { key: TOKEN_KEY })).status, user).toBe(404)
        }
        expect(yield* eventKinds(instance, "attacker")).toEqual(["confirmation_refused"])
        expect(yield* eventKinds(instance, "victim")).toEqual([])
        // Nor can the attacker confirm it now: the code was used.
        const late = yield* confirm(instance, "attacker", "gsc", code)
        expect(late.status).toBe(400)
        expect(yield* json(late)).toMatchObject({ _tag: "InvalidConfirmation", reason: "unknown" })
        expect((yield* statusOf(instance, "attacker", "gsc")).connected).toBe(false)
      }))

    it.effect("a grant confirmed for the user its flow was started for connects, once", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const { landing } = yield* authorise(instance, "owner", "bing")
        const code = landing.searchParams.get("confirmation") ?? ""
        const confirmed = yield* confirm(instance, "owner", "bing", code)
        expect(confirmed.status).toBe(200)
        expect(yield* json(confirmed, ConnectionStatusJson)).toMatchObject({ platform: "bing", connected: true, status: "connected" })
        expect(yield* eventKinds(instance, "owner")).toEqual(["connected"])
        const again = yield* confirm(instance, "owner", "bing", code)
        expect(again.status).toBe(400)
        expect(yield* eventKinds(instance, "owner")).toEqual(["connected"])
      }))

    it.effect("until confirmed, a grant is not connected, hands out no token and is not refreshed by the monitor", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        const { landing } = yield* authorise(instance, "waiting", "wix")
        expect(landing.searchParams.get("status")).toBe("pending")
        expect((yield* statusOf(instance, "waiting", "wix")).connected).toBe(false)
        expect((yield* call(instance, "/v1/users/waiting/connections/wix/token", { key: TOKEN_KEY })).status).toBe(404)
        const refreshes = fakes.wix.stats.refreshes
        const report = yield* Effect.flatMap(TokenMonitor, (m) => m.tick).pipe(Effect.provide(instance.context))
        expect(report.due).toBe(0)
        expect(fakes.wix.stats.refreshes).toBe(refreshes)
      }))

    it.effect("a re-authorisation replaces the tokens of an existing connection only once confirmed", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "again", "gsc")
        const before = yield* json(yield* call(instance, "/v1/users/again/connections/gsc/token", { key: TOKEN_KEY }), TokenResponseJson)
        const { landing } = yield* authorise(instance, "again", "gsc")
        const during = yield* json(yield* call(instance, "/v1/users/again/connections/gsc/token", { key: TOKEN_KEY }), TokenResponseJson)
        expect(during.access_token).toBe(before.access_token)
        expect((yield* confirm(instance, "again", "gsc", landing.searchParams.get("confirmation") ?? "")).status).toBe(200)
        const after = yield* json(yield* call(instance, "/v1/users/again/connections/gsc/token", { key: TOKEN_KEY }), TokenResponseJson)
        expect(after.access_token).not.toBe(before.access_token)
        expect(fakes.gsc.isLiveAccessToken(after.access_token)).toBe(true)
      }))

    it.effect("a code for one platform confirms nothing on another, and stays good on its own", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const { landing } = yield* authorise(instance, "crossed", "gsc")
        const code = landing.searchParams.get("confirmation") ?? ""
        const elsewhere = yield* confirm(instance, "crossed", "bing", code)
        expect(elsewhere.status).toBe(400)
        expect(yield* json(elsewhere)).toMatchObject({ _tag: "InvalidConfirmation", reason: "unknown" })
        expect((yield* confirm(instance, "crossed", "gsc", code)).status).toBe(200)
      }))

    it.effect("an expired code is refused and its grant revoked; the cleanup revokes and deletes the others", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        const first = yield* authorise(instance, "late-1", "gsc")
        yield* authorise(instance, "late-2", "gsc")
        yield* sql(instance, (s) => s`update oauth_pending_grants set confirm_by = now() - interval '1 second' where user_id in ('late-1', 'late-2')`)
        const revokes = fakes.gsc.requestsTo("revoke").length
        const expired = yield* confirm(instance, "late-1", "gsc", first.landing.searchParams.get("confirmation") ?? "")
        expect(expired.status).toBe(400)
        expect(yield* json(expired)).toMatchObject({ _tag: "InvalidConfirmation", reason: "expired" })
        expect(fakes.gsc.requestsTo("revoke")).toHaveLength(revokes + 1)
        const before = yield* pendingCount(instance)
        const purged = yield* Effect.flatMap(Grants, (g) => g.purgeExpired).pipe(Effect.provide(instance.context))
        expect(purged).toBe(1)
        expect(yield* pendingCount(instance)).toBe(before - 1)
        expect(fakes.gsc.requestsTo("revoke")).toHaveLength(revokes + 2)
        expect((yield* statusOf(instance, "late-2", "gsc")).connected).toBe(false)
      }))

    it.effect("in popup mode the page posts status pending with the confirmation code", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const { callback } = yield* authorise(instance, "popup-user", "gsc", { mode: "popup" })
        const html = yield* Effect.promise(() => callback.text())
        const message = /var m=(\{.*?\});var o=/.exec(html)?.[1]
        expect(JSON.parse(message ?? "null")).toMatchObject({ status: "pending", reason: null, confirmation: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) })
      }))

    it.effect("a malformed confirmation is a 400 naming the field", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const response = yield* post(instance, "/v1/users/someone/connections/gsc/confirm", { confirmation: "not a code!" })
        expect(response.status).toBe(400)
        expect(yield* json(response)).toMatchObject({ _tag: "BadRequest", field: "confirmation" })
      }))
  })

  layer(HarnessLive({ settings: { oauth: { ...testSettings().oauth, confirmation: "off" } } }), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("with OAUTH_CONFIRMATION=off the callback connects the state's user at once", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const { landing } = yield* authorise(instance, "trusting", "gsc")
        expect(landing.searchParams.get("status")).toBe("connected")
        expect(landing.searchParams.has("confirmation")).toBe(false)
        expect((yield* statusOf(instance, "trusting", "gsc")).connected).toBe(true)
      }))
  })
})
