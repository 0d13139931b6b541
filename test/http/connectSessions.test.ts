import { createHash } from "node:crypto"
import { layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect } from "effect"
import { expect } from "vitest"
import type { Instance } from "../support/app.js"
import { startInstance } from "../support/app.js"
import { call, connect, json, post } from "../support/flow.js"
import { FRONTEND, Harness, HarnessLive } from "../support/harness.js"
import { suiteCatalog } from "../support/catalog.js"

const sqlOf = (instance: Instance) => Effect.provide(PgClient.PgClient, instance.context)

/** A session made by the application's back end; its secret, read from the URL's fragment. */
const createSession = (instance: Instance, body: Record<string, unknown>) =>
  Effect.gen(function*() {
    const response = yield* post(instance, "/v1/connect/sessions", body)
    expect(response.status).toBe(201)
    const created = (yield* json(response)) as { connect_url: string; expires_at: string; platforms: Array<string> }
    const url = new URL(created.connect_url)
    const secret = new URLSearchParams(url.hash.slice(1)).get("session") ?? ""
    return { ...created, url, secret }
  })

/** A call of the connect page: the session's header and nothing else. */
const asPage = (instance: Instance, secret: string, path: string, init: RequestInit = {}) =>
  call(instance, path, { ...init, key: null, headers: { ...init.headers, "x-connect-session": secret } })

layer(HarnessLive(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
  it.effect("a session: a page URL with its secret in the fragment only, stored as a hash, offering every configured platform by default", () =>
    Effect.gen(function*() {
      const { instance } = yield* Harness
      const session = yield* createSession(instance, { user_id: "cs-default" })
      expect(session.url.origin + session.url.pathname).toBe("https://app.example.com/connect")
      expect(session.url.search).toBe("")
      expect(session.secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(session.platforms).toEqual(suiteCatalog.map((d) => d.key))
      const remaining = Date.parse(session.expires_at) - Date.now()
      expect(remaining).toBeGreaterThan(29 * 60_000)
      expect(remaining).toBeLessThanOrEqual(30 * 60_000)

      const sql = yield* sqlOf(instance)
      const rows = yield* sql<{ secretHash: Uint8Array; row: string }>`select secret_hash, row_to_json(s)::text as row from connect_sessions s where user_id = 'cs-default'`
      expect(rows).toHaveLength(1)
      expect(Buffer.from(rows[0]!.secretHash).equals(createHash("sha256").update(session.secret).digest())).toBe(true)
      expect(rows[0]!.row.includes(session.secret)).toBe(false)

      const view = (yield* json(yield* asPage(instance, session.secret, "/v1/connect/session"))) as {
        platforms: Array<{ platform: string; status: string }>
        allow_disconnect: boolean
      }
      expect(view.platforms.map((p) => [p.platform, p.status])).toEqual(suiteCatalog.map((d) => [d.key, "not_connected"]))
      expect(view.allow_disconnect).toBe(false)
    }))

  it.effect("the page's API reaches only the session's user and platforms", () =>
    Effect.gen(function*() {
      const { instance } = yield* Harness
      yield* connect(instance, "cs-a", "gsc")
      yield* connect(instance, "cs-b", "gsc")
      const session = yield* createSession(instance, { user_id: "cs-a", platforms: ["bing", "gsc", "gsc"], allow_disconnect: true })
      expect(session.platforms).toEqual(["bing", "gsc"])
      const view = (yield* json(yield* asPage(instance, session.secret, "/v1/connect/session"))) as { platforms: Array<{ platform: string; status: string }> }
      expect(view.platforms.map((p) => [p.platform, p.status])).toEqual([["bing", "not_connected"], ["gsc", "connected"]])

      // Authorize starts a popup flow for the session's user.
      const authorize = yield* asPage(instance, session.secret, "/v1/connect/session/platforms/bing/authorize", { method: "POST" })
      expect(authorize.status).toBe(200)
      expect(yield* json(authorize)).toMatchObject({ details: { platform: "bing", mode: "popup" } })
      const sql = yield* sqlOf(instance)
      const states = yield* sql<{ userId: string }>`select user_id from oauth_states where platform = 'bing' and user_id like 'cs-%'`
      expect(states.map((s) => s.userId)).toEqual(["cs-a"])

      // A platform outside the session: refused.
      const outside = yield* asPage(instance, session.secret, "/v1/connect/session/platforms/wix/authorize", { method: "POST" })
      expect(outside.status).toBe(403)
      expect(yield* json(outside)).toMatchObject({ _tag: "NotInSession", platform: "wix" })
      expect((yield* asPage(instance, session.secret, "/v1/connect/session/platforms/wix", { method: "DELETE" })).status).toBe(403)

      // Disconnect touches the session's user only.
      const disconnected = yield* asPage(instance, session.secret, "/v1/connect/session/platforms/gsc", { method: "DELETE" })
      expect(disconnected.status).toBe(200)
      const statusOf = (user: string) =>
        Effect.flatMap(call(instance, `/v1/users/${user}/connections/gsc`), (r) => json(r)) as Effect.Effect<{ status: string }>
      expect((yield* statusOf("cs-a")).status).toBe("disconnected")
      expect((yield* statusOf("cs-b")).status).toBe("connected")

      // Nothing else answers to the session, and it answers to nothing else.
      expect((yield* asPage(instance, session.secret, "/v1/users/cs-b/connections")).status).toBe(401)
      expect((yield* call(instance, "/v1/connect/session", { key: session.secret })).status).toBe(401)
      expect((yield* call(instance, "/v1/connect/session")).status).toBe(401)
    }))

  it.effect("disconnecting needs a session that allows it", () =>
    Effect.gen(function*() {
      const { instance } = yield* Harness
      yield* connect(instance, "cs-keep", "gsc")
      const session = yield* createSession(instance, { user_id: "cs-keep", platforms: ["gsc"] })
      const refused = yield* asPage(instance, session.secret, "/v1/connect/session/platforms/gsc", { method: "DELETE" })
      expect(refused.status).toBe(403)
      expect(yield* json(refused)).toMatchObject({ _tag: "NotInSession", message: "this connect session does not allow disconnecting" })
      const status = (yield* json(yield* call(instance, "/v1/users/cs-keep/connections/gsc"))) as { status: string }
      expect(status.status).toBe("connected")
    }))

  it.effect("a missing, unknown or expired session is a 401 that says which, with nothing else", () =>
    Effect.gen(function*() {
      const { instance } = yield* Harness
      const session = yield* createSession(instance, { user_id: "cs-expired", platforms: ["gsc"] })
      const reasonOf = (response: Response) => Effect.map(json(response), (body) => [response.status, (body as { reason?: string }).reason])
      expect(yield* reasonOf(yield* call(instance, "/v1/connect/session", { key: null }))).toEqual([401, "missing"])
      expect(yield* reasonOf(yield* asPage(instance, "A".repeat(43), "/v1/connect/session"))).toEqual([401, "unknown"])
      expect(yield* reasonOf(yield* asPage(instance, "not a secret", "/v1/connect/session"))).toEqual([401, "unknown"])
      const sql = yield* sqlOf(instance)
      yield* sql`update connect_sessions set expires_at = now() - interval '1 second' where user_id = 'cs-expired'`
      expect(yield* reasonOf(yield* asPage(instance, session.secret, "/v1/connect/session"))).toEqual([401, "expired"])
      const authorize = yield* asPage(instance, session.secret, "/v1/connect/session/platforms/gsc/authorize", { method: "POST" })
      expect(authorize.status).toBe(401)
    }))

  it.effect("creating a session: bad input is a 400 or 404 naming it, and it needs an API key", () =>
    Effect.gen(function*() {
      const { instance } = yield* Harness
      const status = (body: unknown, key?: string | null) => Effect.map(post(instance, "/v1/connect/sessions", body, key), (r) => r.status)
      expect(yield* status({ user_id: "cs-bad" }, null)).toBe(401)
      expect(yield* status({})).toBe(400)
      expect(yield* status({ user_id: "has space" })).toBe(400)
      expect(yield* status({ user_id: "cs-bad", platforms: [] })).toBe(400)
      expect(yield* status({ user_id: "cs-bad", platforms: ["myspace"] })).toBe(404)
      const foreign = yield* post(instance, "/v1/connect/sessions", { user_id: "cs-bad", return_to: "https://evil.example/steal" })
      expect(foreign.status).toBe(400)
      expect(yield* json(foreign)).toMatchObject({ _tag: "InvalidReturnTo" })
      expect(yield* status({ user_id: "cs-bad", return_to: `${FRONTEND}/settings` })).toBe(201)
    }))

  it.effect("no session secret reaches a log line", () =>
    Effect.gen(function*() {
      const { databaseUrl, env } = yield* Harness
      const logs: Array<string> = []
      const instance = yield* startInstance({ databaseUrl, env, logs, settings: { frontendUrl: new URL(FRONTEND) } })
      const session = yield* createSession(instance, { user_id: "cs-logs", platforms: ["gsc"] })
      yield* asPage(instance, session.secret, "/v1/connect/session")
      yield* asPage(instance, session.secret, "/v1/connect/session/platforms/gsc/authorize", { method: "POST" })
      yield* asPage(instance, `${session.secret.slice(0, 42)}x`, "/v1/connect/session")
      expect(logs.length).toBeGreaterThan(0)
      expect(logs.some((line) => line.includes(session.secret))).toBe(false)
    }).pipe(Effect.scoped))
})
