import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { pgClientLayer } from "../../src/db/Database.js"
import { AuthUrlPayloadJson, TokenResponseJson } from "../../src/http/schemas.js"
import { type Instance, startInstance, TOKEN_KEY } from "../support/app.js"
import { suiteCatalog } from "../support/catalog.js"
import { testPool } from "../support/database.js"
import { call, confirm, connect, json, post } from "../support/flow.js"
import { FRONTEND, Harness, HarnessLive } from "../support/harness.js"

const sqlOn = (databaseUrl: string) => <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  effect.pipe(Effect.provide(pgClientLayer(Redacted.make(databaseUrl), testPool)), Effect.orDie)

/** Authorize and let the fake consent, without calling the service's callback. */
const consent = (instance: Instance, user: string, platform: string, body: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const payload = yield* json(yield* post(instance, `/v1/users/${user}/connections/${platform}/authorize`, body), AuthUrlPayloadJson)
    const answer = yield* Effect.promise(() => fetch(payload.auth_url, { redirect: "manual" }))
    return { payload, query: new URL(answer.headers.get("location") ?? "").searchParams }
  })

const landing = (response: Response) => new URL(response.headers.get("location") ?? "")

const callback = (instance: Instance, platform: string, query: URLSearchParams | Record<string, string> | Array<[string, string]>) =>
  call(instance, `/oauth/${platform}/callback?${new URLSearchParams(query).toString()}`, { key: null })

/** What every callback answer carries, whatever made it. */
const expectCallbackHeaders = (response: Response) => {
  expect(response.headers.get("referrer-policy")).toBe("no-referrer")
  expect(response.headers.get("cache-control")).toBe("no-store")
}

/** The popup page's message, read back from its script. */
const popupMessage = (html: string): unknown => {
  const found = /var m=(\{.*?\});var o=/.exec(html)
  return found?.[1] === undefined ? null : JSON.parse(found[1])
}

/** A successful callback's answer holds the grant for confirmation: the application confirms it for the same user. */
const confirmed = (instance: Instance, user: string, platform: string, response: Response) =>
  Effect.gen(function*() {
    const url = landing(response)
    expect(url.searchParams.get("status")).toBe("pending")
    const answer = yield* confirm(instance, user, platform, url.searchParams.get("confirmation") ?? "")
    expect(answer.status).toBe(200)
  })

const connectionCount = (databaseUrl: string, user: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ n: number }>`select count(*)::int as n from oauth_connections where user_id = ${user}`).pipe(
    Effect.map((rows) => rows[0]?.n ?? -1),
    sqlOn(databaseUrl)
  )

describe("callback", () => {
  layer(HarnessLive(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("without a state: refused, back to FRONTEND_URL with reason state_missing", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const response = yield* callback(instance, "gsc", { code: "abc" })
        expect(response.status).toBe(302)
        const url = landing(response)
        expect(url.origin).toBe(FRONTEND)
        expect(url.searchParams.get("status")).toBe("error")
        expect(url.searchParams.get("reason")).toBe("state_missing")
      }))

    it.effect("with a state it never issued: state_unknown", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const url = landing(yield* callback(instance, "gsc", { code: "abc", state: "forged-state-value" }))
        expect(url.searchParams.get("reason")).toBe("state_unknown")
      }))

    it.effect("replayed: the second use of a state is refused and stores nothing more", () =>
      Effect.gen(function*() {
        const { instance, databaseUrl } = yield* Harness
        const { query } = yield* consent(instance, "cb-replay", "gsc")
        yield* confirmed(instance, "cb-replay", "gsc", yield* callback(instance, "gsc", query))
        const again = landing(yield* callback(instance, "gsc", query))
        expect(again.searchParams.get("reason")).toBe("state_replayed")
        expect(yield* connectionCount(databaseUrl, "cb-replay")).toBe(1)
      }))

    it.effect("expired: refused, and not usable afterwards", () =>
      Effect.gen(function*() {
        const { instance, databaseUrl, fakes } = yield* Harness
        const { query } = yield* consent(instance, "cb-expired", "gsc")
        yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`update oauth_states set expires_at = now() - interval '1 second' where user_id = 'cb-expired'`).pipe(sqlOn(databaseUrl))
        const exchanges = fakes.gsc.stats.codeExchanges
        expect(landing(yield* callback(instance, "gsc", query)).searchParams.get("reason")).toBe("state_expired")
        expect(landing(yield* callback(instance, "gsc", query)).searchParams.get("reason")).toBe("state_replayed")
        expect(fakes.gsc.stats.codeExchanges).toBe(exchanges)
        expect(yield* connectionCount(databaseUrl, "cb-expired")).toBe(0)
      }))

    it.effect("a state issued for GSC is refused on Bing's callback, and burnt", () =>
      Effect.gen(function*() {
        const { instance, databaseUrl } = yield* Harness
        const { query } = yield* consent(instance, "cb-mixup", "gsc")
        expect(landing(yield* callback(instance, "bing", query)).searchParams.get("reason")).toBe("state_platform_mismatch")
        expect(landing(yield* callback(instance, "gsc", query)).searchParams.get("reason")).toBe("state_replayed")
        expect(yield* connectionCount(databaseUrl, "cb-mixup")).toBe(0)
      }))

    it.effect("access_denied with HTML in the description: reason access_denied, nothing reflected", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        fakes.gsc.deny("access_denied", "<script>alert('x')</script>")
        const { query } = yield* consent(instance, "cb-denied", "gsc", { return_to: `${FRONTEND}/onboarding` })
        expect(query.get("error")).toBe("access_denied")
        const response = yield* callback(instance, "gsc", query)
        const url = landing(response)
        expect(url.pathname).toBe("/onboarding")
        expect(url.searchParams.get("reason")).toBe("access_denied")
        expect(response.headers.get("location")).not.toMatch(/script|alert/)
        expect(yield* connectionCount(databaseUrl, "cb-denied")).toBe(0)
      }))

    it.effect("popup mode: a page posting to FRONTEND_URL's origin, escaping what the platform sent", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        fakes.gsc.deny("<script>alert(1)</script>", "<script>alert(2)</script>")
        const { query } = yield* consent(instance, "cb-popup", "gsc", { mode: "popup" })
        const response = yield* callback(instance, "gsc", query)
        expect(response.status).toBe(200)
        expect(response.headers.get("content-type")).toMatch(/text\/html/)
        expect(response.headers.get("referrer-policy")).toBe("no-referrer")
        expect(response.headers.get("cache-control")).toBe("no-store")
        expect(response.headers.get("content-security-policy")).toMatch(/script-src 'sha256-/)
        const html = yield* Effect.promise(() => response.text())
        expect(html).toContain(`"${FRONTEND}"`)
        expect(html).not.toContain(`"*"`)
        expect(html).not.toContain("alert(")
        expect(html).toContain(`"status":"error"`)
        expect(html).toContain(`"reason":"authorization_failed"`)
      }))

    it.effect("popup mode, success: posts pending, with the confirmation code", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const { callback: response } = yield* connect(instance, "cb-popup-ok", "bing", { mode: "popup" })
        const html = yield* Effect.promise(() => response.text())
        expect(html).toContain(`"type":"oauth-integrations:callback","platform":"bing","status":"pending","reason":null,"confirmation":"`)
      }))

    it.effect("without a code: code_missing", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const { query } = yield* consent(instance, "cb-nocode", "bing")
        query.delete("code")
        expect(landing(yield* callback(instance, "bing", query)).searchParams.get("reason")).toBe("code_missing")
      }))

    it.effect("a code the platform rejects: code_rejected, nothing stored, state burnt", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        const { query } = yield* consent(instance, "cb-badcode", "bing")
        fakes.bing.setBehaviour("token", "invalid_grant", { times: 1 })
        expect(landing(yield* callback(instance, "bing", query)).searchParams.get("reason")).toBe("code_rejected")
        expect(yield* connectionCount(databaseUrl, "cb-badcode")).toBe(0)
        expect(landing(yield* callback(instance, "bing", query)).searchParams.get("reason")).toBe("state_replayed")
      }))

    it.effect("a code exchange is not retried when the platform fails", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        const { query } = yield* consent(instance, "cb-503", "wordpress")
        fakes.wordpress.setBehaviour("token", "unavailable", { times: 1 })
        const before = fakes.wordpress.requestsTo("token").length
        expect(landing(yield* callback(instance, "wordpress", query)).searchParams.get("reason")).toBe("platform_unavailable")
        expect(fakes.wordpress.requestsTo("token").length - before).toBe(1)
      }))

    it.effect("an unknown platform: 404 listing the known ones", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const response = yield* callback(instance, "myspace", { code: "x", state: "y" })
        expect(response.status).toBe(404)
        expectCallbackHeaders(response)
        expect(yield* json(response)).toEqual({ _tag: "UnknownPlatform", platform: "myspace", known: suiteCatalog.map((d) => d.key) })
      }))

    it.effect("a platform key that is not one: 400, with the callback's headers", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const response = yield* callback(instance, "GSC!", { code: "x", state: "y" })
        expect(response.status).toBe(400)
        expectCallbackHeaders(response)
        expect((yield* json(response))._tag).toBe("BadRequest")
      }))

    it.effect("an over-long or repeated state: back to FRONTEND_URL with invalid_request, nothing echoed", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const long = `s${"x".repeat(600)}`
        for (const query of [
          [["state", long], ["code", "abc"]],
          [["state", "first-state"], ["state", "second-state"], ["code", "abc"]]
        ] satisfies Array<Array<[string, string]>>) {
          const response = yield* callback(instance, "gsc", query)
          expect(response.status).toBe(302)
          expectCallbackHeaders(response)
          const url = landing(response)
          expect(url.origin).toBe(FRONTEND)
          expect(Object.fromEntries(url.searchParams)).toEqual({ platform: "gsc", status: "error", reason: "invalid_request" })
          expect(response.headers.get("location")).not.toMatch(/xxxx|first-state|second-state|abc/)
        }
      }))

    it.effect("an over-long or repeated code with a good state: the flow ends as invalid_request, in its own mode, and the state is burnt", () =>
      Effect.gen(function*() {
        const { instance, databaseUrl } = yield* Harness
        for (const [user, tamper] of [
          ["cb-long-code", (q: URLSearchParams) => q.set("code", "c".repeat(5000))],
          ["cb-two-codes", (q: URLSearchParams) => q.append("code", "another-code")],
          ["cb-two-errors", (q: URLSearchParams) => { q.append("error", "access_denied"); q.append("error", "server_error") }]
        ] as const) {
          const { query } = yield* consent(instance, user, "bing", { mode: "popup" })
          tamper(query)
          const response = yield* callback(instance, "bing", query)
          expect(response.status, user).toBe(200)
          expectCallbackHeaders(response)
          const html = yield* Effect.promise(() => response.text())
          expect(popupMessage(html), user).toMatchObject({ platform: "bing", status: "error", reason: "invalid_request" })
          expect(html).not.toMatch(/ccccc|another-code/)
          expect(yield* connectionCount(databaseUrl, user)).toBe(0)
          query.delete("code")
          query.delete("error")
          const replay = yield* callback(instance, "bing", query)
          expect(popupMessage(yield* Effect.promise(() => replay.text()))).toMatchObject({ reason: "state_replayed" })
        }
      }))

    it.effect("parameters the platform adds (scope, its own iss, a long error_description) are ignored; an iss naming another issuer is refused", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const { query } = yield* consent(instance, "cb-extra", "gsc")
        query.set("scope", "https://www.googleapis.com/auth/webmasters.readonly")
        query.set("iss", "https://accounts.google.com")
        query.set("authuser", "0")
        expect(landing(yield* callback(instance, "gsc", query)).searchParams.get("status")).toBe("pending")
        const forged = yield* consent(instance, "cb-extra-forged", "gsc")
        forged.query.set("iss", "https://attacker.example")
        expect(landing(yield* callback(instance, "gsc", forged.query)).searchParams.get("reason")).toBe("issuer_mismatch")
        const denied = yield* consent(instance, "cb-extra-denied", "bing")
        denied.query.set("error", "access_denied")
        denied.query.set("error_description", "d".repeat(5000))
        denied.query.delete("code")
        expect(landing(yield* callback(instance, "bing", denied.query)).searchParams.get("reason")).toBe("access_denied")
      }))

    it.effect("popup mode: a replayed state answers with the popup page, not a redirect", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const { query } = yield* consent(instance, "cb-popup-replay", "gsc", { mode: "popup" })
        expect((yield* callback(instance, "gsc", query)).status).toBe(200)
        const again = yield* callback(instance, "gsc", query)
        expect(again.status).toBe(200)
        expectCallbackHeaders(again)
        expect(popupMessage(yield* Effect.promise(() => again.text()))).toEqual({
          type: "oauth-integrations:callback",
          platform: "gsc",
          status: "error",
          reason: "state_replayed"
        })
      }))

    it.effect("popup mode: an expired state answers with the popup page", () =>
      Effect.gen(function*() {
        const { instance, databaseUrl } = yield* Harness
        const { query } = yield* consent(instance, "cb-popup-expired", "gsc", { mode: "popup" })
        yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql`update oauth_states set expires_at = now() - interval '1 second' where user_id = 'cb-popup-expired'`).pipe(sqlOn(databaseUrl))
        const response = yield* callback(instance, "gsc", query)
        expect(response.status).toBe(200)
        expect(popupMessage(yield* Effect.promise(() => response.text()))).toMatchObject({ status: "error", reason: "state_expired" })
      }))

    it.effect("redirect mode: a replayed or expired state returns to the flow's return_to", () =>
      Effect.gen(function*() {
        const { instance, databaseUrl } = yield* Harness
        const { query } = yield* consent(instance, "cb-return-replay", "gsc", { return_to: `${FRONTEND}/settings/integrations` })
        yield* callback(instance, "gsc", query)
        const replayed = landing(yield* callback(instance, "gsc", query))
        expect(replayed.pathname).toBe("/settings/integrations")
        expect(replayed.searchParams.get("reason")).toBe("state_replayed")
        const late = yield* consent(instance, "cb-return-expired", "gsc", { return_to: `${FRONTEND}/later` })
        yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql`update oauth_states set expires_at = now() - interval '1 second' where user_id = 'cb-return-expired'`).pipe(sqlOn(databaseUrl))
        const expired = landing(yield* callback(instance, "gsc", late.query))
        expect(expired.pathname).toBe("/later")
        expect(expired.searchParams.get("reason")).toBe("state_expired")
      }))

    it.scoped("no token, code, verifier, secret or state reaches a log line, in full flows and on error paths", () =>
      Effect.gen(function*() {
        const { databaseUrl, env, fakes, fakeOf } = yield* Harness
        const logs: Array<string> = []
        const instance = yield* startInstance({ databaseUrl, env, settings: { frontendUrl: new URL(FRONTEND) }, logs })
        const seen: Array<string> = []
        for (const { key: platform } of suiteCatalog) {
          const { payload } = yield* connect(instance, `logs-${platform}`, platform)
          seen.push(payload.state)
          const token = yield* json(yield* call(instance, `/v1/users/logs-${platform}/connections/${platform}/token`, { key: TOKEN_KEY }), TokenResponseJson)
          seen.push(token.access_token)
          yield* post(instance, `/v1/users/logs-${platform}/connections/${platform}/refresh`)
          yield* call(instance, `/v1/users/logs-${platform}/connections/${platform}`, { method: "DELETE" })
        }
        // Error paths: a rejected code, a platform failing or answering garbage at the
        // exchange, invalid_grant on refresh, a state nobody could have issued.
        for (const [user, behaviour] of [["logs-rejected", "invalid_grant"], ["logs-500", "server_error"], ["logs-garbled", "malformed"]] as const) {
          const { payload, query } = yield* consent(instance, user, "gsc")
          seen.push(payload.state)
          fakes.gsc.setBehaviour("token", behaviour, { times: 1 })
          expect(landing(yield* callback(instance, "gsc", query)).searchParams.get("status"), behaviour).toBe("error")
        }
        yield* connect(instance, "logs-dead", "gsc")
        fakes.gsc.setBehaviour("token", "invalid_grant", { times: 1 })
        expect((yield* post(instance, "/v1/users/logs-dead/connections/gsc/refresh")).status).toBe(409)
        const oversized = `forged-${"s".repeat(700)}`
        seen.push(oversized)
        yield* callback(instance, "gsc", { state: oversized, code: "forged-code-0123456789" })
        seen.push("forged-code-0123456789")

        const secrets = [...seen]
        for (const { key: platform } of suiteCatalog) {
          const fake = fakeOf(platform)
          secrets.push(...fake.issuedTokens())
          if (fake.clientSecret !== null) secrets.push(fake.clientSecret)
          for (const r of fake.requestsTo("authorize")) secrets.push(...[r.query["state"], r.query["code_challenge"]].filter((v) => v !== undefined))
          for (const r of fake.requestsTo("token")) {
            for (const field of ["code", "code_verifier", "codeVerifier", "refresh_token", "refreshToken", "client_secret"]) {
              const value = r.body[field]
              if (typeof value === "string") secrets.push(value)
            }
          }
        }
        expect(fakes.gsc.issuedTokens().length).toBeGreaterThan(2)
        expect(logs.some((line) => line.includes("callback refused"))).toBe(true)
        const text = logs.join("\n")
        const leaked = secrets.filter((s) => s.length >= 8 && text.includes(s))
        expect(leaked).toEqual([])
      }))
  })
})

/**
 * Makes PostgreSQL refuse the first `failures` inserts of `user`'s connection, as a database
 * that is down would: the repository's own statement fails, nothing else is touched.
 */
const refuseInserts = (databaseUrl: string, user: string, failures: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const attempts = `test_attempts_${user.replace(/[^a-z0-9]/g, "_")}`
    return Effect.all([
      sql`create table if not exists test_refused_inserts (user_id text primary key, attempts regclass not null, failures int not null)`,
      sql.unsafe(`create or replace function test_refuse_inserts() returns trigger language plpgsql as $$
        begin
          if exists (select 1 from test_refused_inserts r where r.user_id = new.user_id and nextval(r.attempts) <= r.failures) then
            raise exception 'the database is unavailable (test)';
          end if;
          return new;
        end $$`),
      // Where a callback stores its grant: a pending grant (confirmation required), or a connection.
      sql`drop trigger if exists test_refuse_inserts on oauth_connections`,
      sql`create trigger test_refuse_inserts before insert on oauth_connections for each row execute function test_refuse_inserts()`,
      sql`drop trigger if exists test_refuse_inserts on oauth_pending_grants`,
      sql`create trigger test_refuse_inserts before insert on oauth_pending_grants for each row execute function test_refuse_inserts()`,
      sql.unsafe(`create sequence ${attempts}`),
      sql`insert into test_refused_inserts values (${user}, ${attempts}::regclass, ${failures})`
    ], { discard: true })
  }).pipe(sqlOn(databaseUrl))

describe("callback: a grant that cannot be stored", () => {
  layer(HarnessLive(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("the store failing past its retries: the new grant is revoked at the platform and the callback answers service_unavailable", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* refuseInserts(databaseUrl, "cb-store-down", 1000)
        const { query } = yield* consent(instance, "cb-store-down", "gsc")
        const liveBefore = new Set(fakes.gsc.liveTokens())
        const exchanges = fakes.gsc.stats.codeExchanges
        const revocations = fakes.gsc.requestsTo("revoke").length
        const url = landing(yield* callback(instance, "gsc", query))
        expect(url.searchParams.get("status")).toBe("error")
        expect(url.searchParams.get("reason")).toBe("service_unavailable")
        expect(fakes.gsc.stats.codeExchanges).toBe(exchanges + 1)
        expect(fakes.gsc.requestsTo("revoke").length).toBe(revocations + 1)
        expect(fakes.gsc.liveTokens().filter((t) => !liveBefore.has(t))).toEqual([])
        expect(yield* connectionCount(databaseUrl, "cb-store-down")).toBe(0)
      }))

    it.effect("a store that fails twice, then works on its retry: connected, nothing revoked", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* refuseInserts(databaseUrl, "cb-store-blink", 2)
        const { query } = yield* consent(instance, "cb-store-blink", "gsc")
        const revocations = fakes.gsc.requestsTo("revoke").length
        yield* confirmed(instance, "cb-store-blink", "gsc", yield* callback(instance, "gsc", query))
        expect(yield* connectionCount(databaseUrl, "cb-store-blink")).toBe(1)
        expect(fakes.gsc.requestsTo("revoke").length).toBe(revocations)
        const token = yield* json(yield* call(instance, "/v1/users/cb-store-blink/connections/gsc/token", { key: TOKEN_KEY }), TokenResponseJson)
        expect(fakes.gsc.isLiveAccessToken(token.access_token)).toBe(true)
      }))

    it.effect("the revocation of a grant that could not be stored is logged, without a token", () =>
      Effect.gen(function*() {
        const { fakes, databaseUrl, env } = yield* Harness
        const logs: Array<string> = []
        const instance = yield* startInstance({ databaseUrl, env, settings: { frontendUrl: new URL(FRONTEND) }, logs })
        yield* refuseInserts(databaseUrl, "cb-store-log", 1000)
        const { query } = yield* consent(instance, "cb-store-log", "gsc")
        yield* callback(instance, "gsc", query)
        const revoked = logs.filter((line) => line.includes("the grant could not be stored, and was revoked at the platform"))
        expect(revoked).toHaveLength(1)
        expect(revoked[0]).toContain("platform=gsc")
        const text = logs.join("\n")
        expect(fakes.gsc.issuedTokens().filter((t) => text.includes(t))).toEqual([])
      }).pipe(Effect.scoped))
  })
})
