import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { request } from "undici"
import { fakeForge } from "../support/platforms/forge.js"
import { fakeGsc, FakeOAuthPlatform, fakeWix } from "../support/platforms/index.js"
import { randomToken, scoped } from "../support/platforms/server.js"

// The fakes stand in for the real platforms: what they refuse, the real ones refuse.
const form = "application/x-www-form-urlencoded"

const postTo = (url: string, contentType: string, body: string) =>
  Effect.promise(async () => {
    const response = await fetch(url, { method: "POST", headers: { "content-type": contentType }, body })
    return { status: response.status, contentType: response.headers.get("content-type"), text: await response.text() }
  })

const codeGrant = { grant_type: "authorization_code", code: "c", redirect_uri: "https://app.example.com/oauth/x/callback", client_id: "x" }

describe("fake platforms", () => {
  it.scoped("a form-body token endpoint refuses a JSON body with 400 invalid_request", () =>
    Effect.gen(function*() {
      const gsc = yield* fakeGsc()
      const answer = yield* postTo(gsc.server.url("/oauth/token"), "application/json", JSON.stringify({ ...codeGrant, client_id: gsc.clientId }))
      expect(answer.status).toBe(400)
      expect(JSON.parse(answer.text)).toMatchObject({ error: "invalid_request" })
    }))

  it.scoped("a JSON-body token endpoint refuses a form body with 400 invalid_request", () =>
    Effect.gen(function*() {
      const fake = yield* scoped(() =>
        new FakeOAuthPlatform({
          key: "jsononly",
          prefix: "JSONONLY",
          clientSecret: "s",
          requiredAuthorizeParams: {},
          pkce: "none",
          paramCase: "snake",
          tokenBodies: ["json"],
          issuesRefreshTokens: true,
          defaultExpiresIn: 3600,
          defaultRotation: false,
          accessToken: () => randomToken("j-at"),
          tokenExtras: () => ({}),
          apiAuth: "bearer"
        }, {}).start()
      )
      const answer = yield* postTo(fake.server.url("/oauth/token"), form, new URLSearchParams({ ...codeGrant, client_id: fake.clientId }).toString())
      expect(answer.status).toBe(400)
      expect(JSON.parse(answer.text)).toMatchObject({ error: "invalid_request" })
    }))

  it.scoped("Wix's token endpoint reads both bodies (PLATFORMS.md)", () =>
    Effect.gen(function*() {
      const wix = yield* fakeWix()
      const json = yield* postTo(wix.server.url("/oauth/token"), "application/json", JSON.stringify({ grantType: "anonymous", clientId: wix.clientId }))
      const urlencoded = yield* postTo(wix.server.url("/oauth/token"), form, new URLSearchParams({ grantType: "anonymous", clientId: wix.clientId }).toString())
      expect([json.status, urlencoded.status]).toEqual([200, 200])
    }))

  it.scoped("a malformed answer is cut-short JSON under a JSON content type", () =>
    Effect.gen(function*() {
      const gsc = yield* fakeGsc()
      gsc.setBehaviour("token", "malformed", { times: 1 })
      const answer = yield* postTo(gsc.server.url("/oauth/token"), form, "")
      expect(answer.status).toBe(200)
      expect(answer.contentType).toContain("application/json")
      expect(() => JSON.parse(answer.text)).toThrow()
    }))

  it.scoped("remembers every token it issued, rotated and revoked ones included", () =>
    Effect.gen(function*() {
      const wix = yield* fakeWix()
      const first = wix.mint()
      const refresh = yield* postTo(
        wix.server.url("/oauth/token"),
        "application/json",
        JSON.stringify({ grantType: "refresh_token", clientId: wix.clientId, refreshToken: first.refreshToken })
      )
      expect(refresh.status).toBe(200)
      wix.revokeAll()
      const issued = wix.issuedTokens()
      expect(issued).toHaveLength(4)
      expect(issued).toEqual(expect.arrayContaining([first.accessToken, first.refreshToken]))
      expect(wix.liveTokens()).toEqual([])
    }))
})

describe("Forge's fake, as GitHub answers", () => {
  /** A request as undici sends it: no User-Agent unless one is given. */
  const tokenRequest = (url: string, headers: Record<string, string>, body: string) =>
    Effect.promise(async () => {
      const response = await request(url, { method: "POST", headers: { "content-type": form, accept: "application/json", ...headers }, body })
      return { status: response.statusCode, json: await response.body.json() }
    })

  it.scoped("refuses a request without a User-Agent with 403", () =>
    Effect.gen(function*() {
      const forge = yield* fakeForge()
      const refresh = new URLSearchParams({ grant_type: "refresh_token", refresh_token: "rt", client_id: forge.clientId, client_secret: "forge-client-secret" })
      const answer = yield* tokenRequest(forge.server.url("/oauth/token"), {}, refresh.toString())
      expect(answer.status).toBe(403)
      expect(answer.json).toMatchObject({ message: expect.stringContaining("User-Agent") })
    }))

  it.scoped("answers a refused token request with HTTP 200 and the error in the body", () =>
    Effect.gen(function*() {
      const forge = yield* fakeForge()
      const refresh = new URLSearchParams({ grant_type: "refresh_token", refresh_token: "rt", client_id: forge.clientId, client_secret: "forge-client-secret" })
      const answer = yield* tokenRequest(forge.server.url("/oauth/token"), { "user-agent": "test" }, refresh.toString())
      expect(answer).toMatchObject({ status: 200, json: { error: "invalid_grant" } })
    }))
})
