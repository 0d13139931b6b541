import { describe, expect, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { ConnectionStatusJson, TokenResponseJson } from "../../src/http/schemas.js"
import { suiteCatalog } from "../support/catalog.js"
import { call, connect, json, post } from "../support/flow.js"
import { FRONTEND, Harness, HarnessLive, redirectUri } from "../support/harness.js"
import { s256 } from "../support/platforms/server.js"
import { startInstance, TOKEN_KEY } from "../support/app.js"

const form = "application/x-www-form-urlencoded"
const SessionChallenge = Schema.Struct({ auth: Schema.Struct({ authRequest: Schema.Struct({ codeChallenge: Schema.String }) }) })

describe("what each platform receives", () => {
  layer(HarnessLive({ fakeOptions: { gsc: { grantedScope: "https://www.googleapis.com/auth/webmasters.readonly openid" } } }), {
    excludeTestServices: true,
    timeout: "60 seconds"
  })((it) => {
    it.effect("gsc: offline access, consent, granted scopes, PKCE S256; form exchange with the verifier and the secret", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "wire-gsc", "gsc")
        const authorize = fakes.gsc.requestsTo("authorize").at(-1)!
        expect(authorize.query).toMatchObject({
          response_type: "code",
          client_id: fakes.gsc.clientId,
          redirect_uri: redirectUri("gsc"),
          scope: "https://www.googleapis.com/auth/webmasters.readonly",
          access_type: "offline",
          include_granted_scopes: "true",
          prompt: "consent",
          code_challenge_method: "S256"
        })
        expect(authorize.query["state"]).toMatch(/^[A-Za-z0-9_-]{43}$/)
        const exchange = fakes.gsc.requestsTo("token").at(-1)!
        expect(exchange.method).toBe("POST")
        expect(exchange.contentType).toContain(form)
        expect(Object.keys(exchange.body).sort()).toEqual(["client_id", "client_secret", "code", "code_verifier", "grant_type", "redirect_uri"])
        expect(exchange.body).toMatchObject({ grant_type: "authorization_code", client_id: fakes.gsc.clientId, client_secret: "gsc-client-secret", redirect_uri: redirectUri("gsc") })
        expect(s256(String(exchange.body["code_verifier"]))).toBe(authorize.query["code_challenge"])
        expect(String(exchange.body["code_verifier"])).toMatch(/^[A-Za-z0-9_-]{43}$/)
      }))

    it.effect("gsc: stores the scope actually granted and the site list", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "wire-gsc-scope", "gsc")
        const status = yield* json(yield* call(instance, "/v1/users/wire-gsc-scope/connections/gsc"), ConnectionStatusJson)
        expect(status.accounts[0]?.scope).toBe("https://www.googleapis.com/auth/webmasters.readonly openid")
        expect(status.details).toEqual({ sites: [{ site_url: "sc-domain:example.com", permission_level: "siteOwner" }] })
      }))

    it.effect("gsc: a refresh without a new refresh token keeps the old one, so the next refresh works", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "wire-gsc-keep", "gsc")
        for (let i = 0; i < 2; i++) {
          const r = yield* post(instance, "/v1/users/wire-gsc-keep/connections/gsc/refresh")
          expect(r.status).toBe(200)
        }
        const refreshes = fakes.gsc.requestsTo("token").filter((r) => r.body["grant_type"] === "refresh_token").slice(-2)
        expect(refreshes[0]?.body["refresh_token"]).toBe(refreshes[1]?.body["refresh_token"])
        expect(Object.keys(refreshes[0]?.body ?? {}).sort()).toEqual(["client_id", "client_secret", "grant_type", "refresh_token"])
      }))

    it.effect("bing: form bodies, scope webmaster.manage, no PKCE by default; site list", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "wire-bing", "bing")
        const authorize = fakes.bing.requestsTo("authorize").at(-1)!
        expect(authorize.query["scope"]).toBe("webmaster.manage")
        expect(authorize.query["code_challenge"]).toBeUndefined()
        expect(authorize.query["code_challenge_method"]).toBeUndefined()
        const exchange = fakes.bing.requestsTo("token").at(-1)!
        expect(exchange.contentType).toContain(form)
        expect(Object.keys(exchange.body).sort()).toEqual(["client_id", "client_secret", "code", "grant_type", "redirect_uri"])
        const status = yield* json(yield* call(instance, "/v1/users/wire-bing/connections/bing"), ConnectionStatusJson)
        expect(status.details).toEqual({ sites: [{ url: "https://example.com/", verified: true }] })
      }))

    it.effect("wordpress: classic exchange; the account of a global token comes from /me", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        const { redirect } = yield* connect(instance, "wire-wp", "wordpress")
        const authorize = fakes.wordpress.requestsTo("authorize").at(-1)!
        expect(authorize.query["scope"]).toBe("global")
        const exchange = fakes.wordpress.requestsTo("token").at(-1)!
        expect(exchange.method).toBe("POST")
        expect(exchange.contentType).toContain(form)
        expect(exchange.body).toEqual({
          client_id: fakes.wordpress.clientId,
          client_secret: "wordpress-client-secret",
          redirect_uri: redirectUri("wordpress"),
          code: redirect.searchParams.get("code"),
          grant_type: "authorization_code"
        })
        const status = yield* json(yield* call(instance, "/v1/users/wire-wp/connections/wordpress"), ConnectionStatusJson)
        expect(status.accounts[0]?.account_id).toBe("4242")
        expect(status.accounts[0]?.expires_at).toBeNull()
        expect(status.details).toMatchObject({ blog_id: 0, blog_url: null, username: "writer" })
      }))

    it.effect("wix: visitor token, redirect session with PKCE, camelCase JSON exchange without a secret, raw Authorization", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "wire-wix", "wix")
        const [anonymous, exchange] = fakes.wix.requestsTo("token").slice(-2)
        expect(anonymous?.body).toEqual({ grantType: "anonymous", clientId: fakes.wix.clientId })
        const session = fakes.wix.requestsTo("redirectSession").at(-1)!
        expect(session.headers["authorization"]).not.toMatch(/^Bearer /)
        expect(session.body).toMatchObject({
          auth: { authRequest: { clientId: fakes.wix.clientId, redirectUri: redirectUri("wix"), codeChallengeMethod: "S256", responseType: "code", responseMode: "query", scope: "offline_access" } }
        })
        expect(exchange?.contentType).toContain("application/json")
        expect(Object.keys(exchange?.body ?? {}).sort()).toEqual(["clientId", "code", "codeVerifier", "grantType", "redirectUri"])
        expect(exchange?.body["grantType"]).toBe("authorization_code")
        const site = fakes.wix.requestsTo("site").at(-1)!
        expect(site.headers["authorization"]).not.toMatch(/^Bearer /)
        const status = yield* json(yield* call(instance, "/v1/users/wire-wix/connections/wix"), ConnectionStatusJson)
        expect(status.details).toEqual({ site_id: "site-abc", member_id: "member-123" })
      }))

    it.effect("wix: a failing site lookup does not fail the connection", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        fakes.wix.setBehaviour("site", "forbidden", { times: 1 })
        yield* connect(instance, "wire-wix-nosite", "wix")
        const status = yield* json(yield* call(instance, "/v1/users/wire-wix-nosite/connections/wix"), ConnectionStatusJson)
        expect(status.connected).toBe(true)
        expect(status.details).toEqual({ site_lookup_failed: "InvalidGrant", member_id: "member-123" })
      }))

    it.effect("bing: without BING_REFRESH_URL, refreshes go to BING_TOKEN_URL as a form of grant_type, refresh_token, client_id, client_secret", () =>
      Effect.gen(function*() {
        const { instance, fakes, env } = yield* Harness
        expect(env["BING_REFRESH_URL"]).toBeUndefined()
        yield* connect(instance, "wire-bing-refresh", "bing")
        const before = fakes.bing.requestsTo("token").length
        expect((yield* post(instance, "/v1/users/wire-bing-refresh/connections/bing/refresh")).status).toBe(200)
        const refresh = fakes.bing.requestsTo("token").slice(before)
        expect(refresh).toHaveLength(1)
        expect(refresh[0]?.contentType).toContain(form)
        expect(refresh[0]?.body).toEqual({
          grant_type: "refresh_token",
          refresh_token: expect.stringMatching(/^bing-rt-/),
          client_id: fakes.bing.clientId,
          client_secret: "bing-client-secret"
        })
        // The token presented is the one issued at the exchange; Bing's fake rotates it.
        const presented = String(refresh[0]?.body["refresh_token"])
        expect(fakes.bing.issuedTokens()).toContain(presented)
        expect(fakes.bing.isLiveRefreshToken(presented)).toBe(false)
      }))

    it.effect("gsc: disconnect revokes the refresh token with a form body token=...", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "wire-gsc-revoke", "gsc")
        const gone = yield* call(instance, "/v1/users/wire-gsc-revoke/connections/gsc", { method: "DELETE" })
        expect(gone.status).toBe(200)
        const revoke = fakes.gsc.requestsTo("revoke").at(-1)!
        expect(revoke.method).toBe("POST")
        expect(revoke.contentType).toContain(form)
        expect(revoke.rawBody).toMatch(/(^|&)token=gsc-rt-/)
        const token = String(revoke.body["token"])
        expect(fakes.gsc.issuedTokens()).toContain(token)
        expect(fakes.gsc.isLiveRefreshToken(token)).toBe(false)
      }))

    it.effect("wix: the verifier sent at the exchange is the one whose S256 is the redirect session's challenge", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "wire-wix-pkce", "wix")
        const session = fakes.wix.requestsTo("redirectSession").at(-1)!
        const challenge = Schema.decodeUnknownSync(SessionChallenge)(session.body).auth.authRequest.codeChallenge
        expect(challenge).toMatch(/^[A-Za-z0-9_-]{43}$/)
        const exchange = fakes.wix.requestsTo("token").filter((r) => r.body["grantType"] === "authorization_code").at(-1)!
        const verifier = String(exchange.body["codeVerifier"])
        expect(verifier).toMatch(/^[A-Za-z0-9_-]{43}$/)
        expect(s256(verifier)).toBe(challenge)
      }))

    it.effect("wix: a refresh is a camelCase JSON body of clientId, grantType, refreshToken, without a secret", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "wire-wix-refresh", "wix")
        expect((yield* post(instance, "/v1/users/wire-wix-refresh/connections/wix/refresh")).status).toBe(200)
        const refresh = fakes.wix.requestsTo("token").filter((r) => r.body["grantType"] === "refresh_token").at(-1)!
        expect(refresh.contentType).toContain("application/json")
        expect(refresh.body).toEqual({ clientId: fakes.wix.clientId, grantType: "refresh_token", refreshToken: expect.stringMatching(/^wix-rt-/) })
        expect(fakes.wix.issuedTokens()).toContain(refresh.body["refreshToken"])
      }))

    it.effect("wordpress: /me answering 401 on validation marks the connection revoked", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "wire-wp-revoked", "wordpress")
        fakes.wordpress.setBehaviour("me", "unauthorized", { times: 1 })
        const validated = yield* post(instance, "/v1/users/wire-wp-revoked/connections/wordpress/refresh")
        expect(validated.status).not.toBe(200)
        expect(fakes.wordpress.requestsTo("me").at(-1)?.headers["authorization"]).toMatch(/^Bearer wp-at-/)
        const status = yield* json(yield* call(instance, "/v1/users/wire-wp-revoked/connections/wordpress"), ConnectionStatusJson)
        expect(status).toMatchObject({ connected: false, status: "revoked" })
        expect(status.accounts[0]?.status).toBe("revoked")
      }))

    it.scoped("wordpress: /me failing at callback time stores nothing and asks the user to retry (platform_unavailable)", () =>
      Effect.gen(function*() {
        const { databaseUrl, env, fakes } = yield* Harness
        // No retries, so the failure reaches the callback at once.
        const instance = yield* startInstance({ databaseUrl, env: { ...env, WORDPRESS_RETRY_MAX: "0" }, settings: { frontendUrl: new URL(FRONTEND) } })
        fakes.wordpress.setBehaviour("me", "server_error", { times: 1 })
        const { callback } = yield* connect(instance, "wire-wp-me-down", "wordpress")
        const failed = new URL(callback.headers.get("location") ?? "")
        expect(failed.searchParams.get("status")).toBe("error")
        expect(failed.searchParams.get("reason")).toBe("platform_unavailable")
        const status = yield* json(yield* call(instance, "/v1/users/wire-wp-me-down/connections/wordpress"), ConnectionStatusJson)
        expect(status).toMatchObject({ connected: false, status: "not_connected", accounts: [] })
        const { confirmed: retried } = yield* connect(instance, "wire-wp-me-down", "wordpress")
        expect(retried?.status).toBe(200)
      }))

    it.effect("wordpress: an unreadable /me answer at callback time stores nothing", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        fakes.wordpress.setBehaviour("me", "malformed", { times: 1 })
        const { callback } = yield* connect(instance, "wire-wp-me-garbled", "wordpress")
        expect(new URL(callback.headers.get("location") ?? "").searchParams.get("reason")).toBe("platform_response_invalid")
        const status = yield* json(yield* call(instance, "/v1/users/wire-wp-me-garbled/connections/wordpress"), ConnectionStatusJson)
        expect(status.accounts).toEqual([])
      }))

    it.effect("a token answer that cannot be read, cut-short JSON or HTML, fails the callback and stores nothing", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        for (const behaviour of ["malformed", "html"] as const) {
          fakes.gsc.setBehaviour("token", behaviour, { times: 1 })
          const { callback } = yield* connect(instance, `wire-gsc-${behaviour}`, "gsc")
          expect(new URL(callback.headers.get("location") ?? "").searchParams.get("reason")).toBe("platform_response_invalid")
          const status = yield* json(yield* call(instance, `/v1/users/wire-gsc-${behaviour}/connections/gsc`), ConnectionStatusJson)
          expect(status.accounts).toEqual([])
        }
      }))

    it.effect("every platform's fresh token is one the platform considers live", () =>
      Effect.gen(function*() {
        const { instance, fakeOf } = yield* Harness
        for (const { key: platform } of suiteCatalog) {
          yield* connect(instance, `wire-live-${platform}`, platform)
          const token = yield* json(yield* call(instance, `/v1/users/wire-live-${platform}/connections/${platform}/token`, { key: TOKEN_KEY }), TokenResponseJson)
          expect(fakeOf(platform).isLiveAccessToken(token.access_token)).toBe(true)
        }
      }))
  })
})

describe("platform settings", () => {
  layer(HarnessLive({ env: { WIX_TOKEN_BODY: "form", BING_PKCE: "true" }, fakeOptions: { wix: { camelCase: true }, wordpress: { blog: { id: 777, url: "https://blog.example.com" } }, bing: { separateRefreshPath: true } } }), {
    excludeTestServices: true,
    timeout: "60 seconds"
  })((it) => {
    it.effect("wix: WIX_TOKEN_BODY=form sends the same camelCase fields form-encoded, and camelCase answers are read", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        const { callback, confirmed } = yield* connect(instance, "set-wix", "wix")
        // Authorised, held for confirmation, and confirmed for the same user by `connect`.
        expect(new URL(callback.headers.get("location") ?? "").searchParams.get("status")).toBe("pending")
        expect(confirmed?.status).toBe(200)
        const exchange = fakes.wix.requestsTo("token").at(-1)!
        expect(exchange.contentType).toContain(form)
        expect(exchange.body["grantType"]).toBe("authorization_code")
        const refreshed = yield* post(instance, "/v1/users/set-wix/connections/wix/refresh")
        expect(refreshed.status).toBe(200)
      }))

    it.effect("bing: BING_PKCE=true sends an S256 challenge and, at the exchange, its verifier", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "set-bing-pkce", "bing")
        const authorize = fakes.bing.requestsTo("authorize").at(-1)!
        expect(authorize.query["code_challenge_method"]).toBe("S256")
        const exchange = fakes.bing.requestsTo("token").at(-1)!
        expect(s256(String(exchange.body["code_verifier"]))).toBe(authorize.query["code_challenge"])
      }))

    it.effect("wordpress: a single-blog token is keyed by its blog, without asking /me", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        // /me would fail: a blog token must not need it.
        fakes.wordpress.setBehaviour("me", "server_error")
        const before = fakes.wordpress.requestsTo("me").length
        yield* connect(instance, "set-wp", "wordpress")
        fakes.wordpress.setBehaviour("me", "ok")
        expect(fakes.wordpress.requestsTo("me")).toHaveLength(before)
        const status = yield* json(yield* call(instance, "/v1/users/set-wp/connections/wordpress"), ConnectionStatusJson)
        expect(status.accounts[0]?.account_id).toBe("777")
        expect(status.details).toEqual({ blog_id: 777, blog_url: "https://blog.example.com" })
      }))

    it.effect("bing: refreshes go to BING_REFRESH_URL when it differs from the token URL", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "set-bing", "bing")
        const r = yield* post(instance, "/v1/users/set-bing/connections/bing/refresh")
        expect(r.status).toBe(200)
        expect(fakes.bing.requestsTo("refresh")).toHaveLength(1)
        expect(fakes.bing.requestsTo("token").filter((t) => t.body["grant_type"] === "refresh_token")).toHaveLength(0)
      }))
  })
})

describe("wix direct authorize URL", () => {
  layer(HarnessLive(), { excludeTestServices: true })((it) => {
    it.effect("WIX_AUTHORIZE_URL set: the URL is built directly, without a redirect session", () =>
      Effect.gen(function*() {
        const { databaseUrl, env, fakes } = yield* Harness
        const instance = yield* startInstance({
          databaseUrl,
          env: { ...env, WIX_AUTHORIZE_URL: fakes.wix.server.url("/oauth/authorize") },
          settings: { frontendUrl: new URL(FRONTEND) }
        })
        const before = fakes.wix.requestsTo("redirectSession").length
        const { callback, confirmed } = yield* connect(instance, "direct-wix", "wix")
        // Authorised, held for confirmation, and confirmed for the same user by `connect`.
        expect(new URL(callback.headers.get("location") ?? "").searchParams.get("status")).toBe("pending")
        expect(confirmed?.status).toBe(200)
        expect(fakes.wix.requestsTo("redirectSession")).toHaveLength(before)
      }).pipe(Effect.scoped))
  })
})
