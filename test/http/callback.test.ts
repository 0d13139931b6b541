import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { pgClientLayer } from "../../src/db/Database.js"
import { type Instance, startInstance, TOKEN_KEY } from "../support/app.js"
import { testPool } from "../support/database.js"
import { call, connect, json, post } from "../support/flow.js"
import { FRONTEND, Harness, HarnessLive } from "../support/harness.js"

const sqlOn = (databaseUrl: string) => <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  effect.pipe(Effect.provide(pgClientLayer(Redacted.make(databaseUrl), testPool)), Effect.orDie)

/** Authorize and let the fake consent, without calling the service's callback. */
const consent = (instance: Instance, user: string, platform: string, body: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const payload = yield* json(yield* post(instance, `/v1/users/${user}/connections/${platform}/authorize`, body))
    const answer = yield* Effect.promise(() => fetch(String(payload.auth_url), { redirect: "manual" }))
    return { payload, query: new URL(answer.headers.get("location") ?? "").searchParams }
  })

const landing = (response: Response) => new URL(response.headers.get("location") ?? "")

const callback = (instance: Instance, platform: string, query: URLSearchParams | Record<string, string>) =>
  call(instance, `/oauth/${platform}/callback?${new URLSearchParams(query).toString()}`, { key: null })

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
        expect(landing(yield* callback(instance, "gsc", query)).searchParams.get("status")).toBe("connected")
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

    it.effect("popup mode, success: posts connected", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const { callback: response } = yield* connect(instance, "cb-popup-ok", "bing", { mode: "popup" })
        const html = yield* Effect.promise(() => response.text())
        expect(html).toContain(`"type":"oauth-integrations:callback","platform":"bing","status":"connected","reason":null`)
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
        expect(yield* json(response)).toEqual({ _tag: "UnknownPlatform", platform: "myspace", known: ["gsc", "bing", "wordpress", "wix"] })
      }))

    it.scoped("no token, code, verifier, secret or state reaches a log line during full flows", () =>
      Effect.gen(function*() {
        const { databaseUrl, env, fakes } = yield* Harness
        const logs: Array<string> = []
        const instance = yield* startInstance({ databaseUrl, env, settings: { frontendUrl: new URL(FRONTEND) }, logs })
        const secrets: Array<string> = []
        for (const platform of ["gsc", "bing", "wordpress", "wix"] as const) {
          const { payload, redirect } = yield* connect(instance, `logs-${platform}`, platform)
          secrets.push(String(payload.state), redirect.searchParams.get("code") ?? "")
          const token = yield* json(yield* call(instance, `/v1/users/logs-${platform}/connections/${platform}/token`, { key: TOKEN_KEY }))
          secrets.push(String(token.access_token))
          yield* post(instance, `/v1/users/logs-${platform}/connections/${platform}/refresh`)
          yield* call(instance, `/v1/users/logs-${platform}/connections/${platform}`, { method: "DELETE" })
          const verifier = fakes[platform].requestsTo("token").map((r) => r.body["code_verifier"] ?? r.body["codeVerifier"])
          secrets.push(...verifier.filter((v): v is string => typeof v === "string"))
          secrets.push(...fakes[platform].liveTokens())
          if (fakes[platform].clientSecret !== null) secrets.push(fakes[platform].clientSecret ?? "")
        }
        for (const platform of ["gsc", "bing", "wordpress", "wix"] as const) {
          for (const r of fakes[platform].requestsTo("token")) {
            for (const field of ["refresh_token", "refreshToken", "code"]) {
              const value = r.body[field]
              if (typeof value === "string") secrets.push(value)
            }
          }
        }
        expect(logs.length).toBeGreaterThan(10)
        const text = logs.join("\n")
        const leaked = secrets.filter((s) => s.length >= 8 && text.includes(s))
        expect(leaked).toEqual([])
      }))
  })
})
