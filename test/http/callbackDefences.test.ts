import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { pgClientLayer } from "../../src/db/Database.js"
import { AuthUrlPayloadJson } from "../../src/http/schemas.js"
import { type Instance, startInstance } from "../support/app.js"
import { testSettings } from "../support/config.js"
import { testPool } from "../support/database.js"
import { call, json, post } from "../support/flow.js"
import { FRONTEND, Harness, HarnessLive } from "../support/harness.js"

// Confirmation is beside the point here: a flow that is not refused connects at once.
const settings = { oauth: { ...testSettings().oauth, confirmation: "off" as const } }

const GOOGLE = "https://accounts.google.com"

/** Authorize and let the fake consent, without calling the service's callback: the code and state are in `query`. */
const consent = (instance: Instance, user: string, platform: string) =>
  Effect.gen(function*() {
    const payload = yield* json(yield* post(instance, `/v1/users/${user}/connections/${platform}/authorize`), AuthUrlPayloadJson)
    const answer = yield* Effect.promise(() => fetch(payload.auth_url, { redirect: "manual" }))
    return { payload, query: new URL(answer.headers.get("location") ?? "").searchParams }
  })

const callback = (instance: Instance, platform: string, query: URLSearchParams | Array<[string, string]>) =>
  call(instance, `/oauth/${platform}/callback?${new URLSearchParams(query).toString()}`, { key: null })

const landing = (response: Response) => new URL(response.headers.get("location") ?? "")

const connectionCount = (databaseUrl: string, user: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ n: number }>`select count(*)::int as n from oauth_connections where user_id = ${user}`).pipe(
    Effect.map((rows) => rows[0]?.n ?? -1),
    Effect.provide(pgClientLayer(Redacted.make(databaseUrl), testPool)),
    Effect.orDie
  )

/**
 * Authorization code injection (RFC 9700 §4.5): the attacker has a victim's code (from a log, a
 * referrer, a compromised redirect) and brings it to the callback with a state of their own flow,
 * to have the victim's grant stored as theirs.
 */
const inject = (instance: Instance, platform: string, victim: string, attacker: string) =>
  Effect.gen(function*() {
    // The victim's own flow, with the victim's own challenge: the platform binds the code to it.
    const stolen = yield* consent(instance, victim, platform)
    const code = stolen.query.get("code") ?? ""
    // The attacker's flow: the service keeps the attacker's verifier for the attacker's state.
    const own = yield* json(yield* post(instance, `/v1/users/${attacker}/connections/${platform}/authorize`), AuthUrlPayloadJson)
    const query: Array<[string, string]> = [["state", own.state], ["code", code]]
    const iss = stolen.query.get("iss")
    if (iss !== null) query.push(["iss", iss])
    return { code, response: yield* callback(instance, platform, query) }
  })

describe("authorization code injection", () => {
  layer(HarnessLive({ settings }), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("with PKCE (GSC): a victim's code brought with an attacker's state is refused at the token endpoint, code_rejected, nothing stored", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        const tokenRequests = fakes.gsc.requestsTo("token").length
        const { exchanges, invalidGrants } = { exchanges: fakes.gsc.stats.codeExchanges, invalidGrants: fakes.gsc.stats.invalidGrants }
        const { code, response } = yield* inject(instance, "gsc", "inj-gsc-victim", "inj-gsc-attacker")
        const url = landing(response)
        expect(url.searchParams.get("status")).toBe("error")
        expect(url.searchParams.get("reason")).toBe("code_rejected")
        // The code went to the platform with the attacker's verifier, which does not match the victim's challenge.
        const sent = fakes.gsc.requestsTo("token").slice(tokenRequests)
        expect(sent).toHaveLength(1)
        expect(sent[0]?.body["code"]).toBe(code)
        expect(typeof sent[0]?.body["code_verifier"]).toBe("string")
        expect(fakes.gsc.stats.invalidGrants).toBe(invalidGrants + 1)
        // No token was issued, so none can have been kept, for either of them.
        expect(fakes.gsc.stats.codeExchanges).toBe(exchanges)
        expect(yield* connectionCount(databaseUrl, "inj-gsc-attacker")).toBe(0)
        expect(yield* connectionCount(databaseUrl, "inj-gsc-victim")).toBe(0)
      }))

    it.scoped("with BING_PKCE=true (Bing's PKCE support unconfirmed): the same injection is refused, code_rejected", () =>
      Effect.gen(function*() {
        const { databaseUrl, env, fakes } = yield* Harness
        const instance = yield* startInstance({ databaseUrl, env: { ...env, BING_PKCE: "true" }, settings: { frontendUrl: new URL(FRONTEND), ...settings } })
        const exchanges = fakes.bing.stats.codeExchanges
        const { response } = yield* inject(instance, "bing", "inj-bing-victim", "inj-bing-attacker")
        expect(landing(response).searchParams.get("reason")).toBe("code_rejected")
        expect(fakes.bing.stats.codeExchanges).toBe(exchanges)
        expect(yield* connectionCount(databaseUrl, "inj-bing-attacker")).toBe(0)
      }))

    it.effect("without PKCE (Bing's default) the same injection stores the victim's grant for the attacker: the residual risk the README names", () =>
      Effect.gen(function*() {
        const { instance, databaseUrl } = yield* Harness
        const { response } = yield* inject(instance, "bing", "inj-nopkce-victim", "inj-nopkce-attacker")
        expect(landing(response).searchParams.get("status")).toBe("connected")
        expect(yield* connectionCount(databaseUrl, "inj-nopkce-attacker")).toBe(1)
      }))
  })
})

describe("the issuer of the authorization response (RFC 9207)", () => {
  layer(HarnessLive({ settings }), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("the fake GSC sends Google's iss, as Google does, and the flow connects", () =>
      Effect.gen(function*() {
        const { instance, databaseUrl } = yield* Harness
        const { query } = yield* consent(instance, "iss-google", "gsc")
        expect(query.get("iss")).toBe(GOOGLE)
        expect(landing(yield* callback(instance, "gsc", query)).searchParams.get("status")).toBe("connected")
        expect(yield* connectionCount(databaseUrl, "iss-google")).toBe(1)
      }))

    it.effect("a forged iss is refused with issuer_mismatch before any exchange: the token endpoint sees no request, nothing is stored, the state is burnt", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        const { query } = yield* consent(instance, "iss-forged", "gsc")
        const tokenRequests = fakes.gsc.requestsTo("token").length
        query.set("iss", "https://attacker.example")
        const url = landing(yield* callback(instance, "gsc", query))
        expect(url.searchParams.get("status")).toBe("error")
        expect(url.searchParams.get("reason")).toBe("issuer_mismatch")
        expect(fakes.gsc.requestsTo("token").length).toBe(tokenRequests)
        expect(yield* connectionCount(databaseUrl, "iss-forged")).toBe(0)
        query.set("iss", GOOGLE)
        expect(landing(yield* callback(instance, "gsc", query)).searchParams.get("reason")).toBe("state_replayed")
        expect(fakes.gsc.requestsTo("token").length).toBe(tokenRequests)
      }))

    it.effect("an error response with a forged iss is refused as issuer_mismatch, not as the error it carries", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        fakes.gsc.deny("access_denied")
        const { query } = yield* consent(instance, "iss-forged-error", "gsc")
        expect(query.get("error")).toBe("access_denied")
        query.set("iss", "https://attacker.example")
        expect(landing(yield* callback(instance, "gsc", query)).searchParams.get("reason")).toBe("issuer_mismatch")
      }))

    it.effect("a missing iss connects for GSC: Google is not relied on to always send it", () =>
      Effect.gen(function*() {
        const { instance, databaseUrl } = yield* Harness
        const { query } = yield* consent(instance, "iss-missing", "gsc")
        query.delete("iss")
        expect(landing(yield* callback(instance, "gsc", query)).searchParams.get("status")).toBe("connected")
        expect(yield* connectionCount(databaseUrl, "iss-missing")).toBe(1)
      }))

    it.effect("a repeated iss is a malformed callback: invalid_request, nothing exchanged", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        const { query } = yield* consent(instance, "iss-twice", "gsc")
        const tokenRequests = fakes.gsc.requestsTo("token").length
        query.append("iss", "https://attacker.example")
        expect(landing(yield* callback(instance, "gsc", query)).searchParams.get("reason")).toBe("invalid_request")
        expect(fakes.gsc.requestsTo("token").length).toBe(tokenRequests)
      }))

    it.scoped("the forged iss is echoed neither into the redirect nor into a log line, beyond its origin", () =>
      Effect.gen(function*() {
        const { databaseUrl, env } = yield* Harness
        const logs: Array<string> = []
        const instance = yield* startInstance({ databaseUrl, env, settings: { frontendUrl: new URL(FRONTEND), ...settings }, logs })
        const { query } = yield* consent(instance, "iss-echo", "gsc")
        query.set("iss", "https://attacker.example/<script>alert(1)</script>?marker=iss-echo-marker")
        const response = yield* callback(instance, "gsc", query)
        const location = response.headers.get("location") ?? ""
        expect(Object.fromEntries(new URL(location).searchParams)).toEqual({ platform: "gsc", status: "error", reason: "issuer_mismatch" })
        expect(location).not.toMatch(/attacker|script|marker/)
        const refused = logs.filter((line) => line.includes("another issuer"))
        expect(refused).toHaveLength(1)
        expect(refused[0]).toContain("received=https://attacker.example")
        expect(refused[0]).toContain(`expected=${GOOGLE}`)
        const text = logs.join("\n")
        expect(text).not.toMatch(/iss-echo-marker|<script>|alert\(/)
      }))
  })
})
