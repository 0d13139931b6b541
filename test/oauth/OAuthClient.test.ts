import { readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted, Schema, TestClock } from "effect"
import { ProviderResponseInvalid } from "../../src/domain/errors.js"
import { makeOAuthClient } from "../../src/oauth/OAuthClient.js"
import type { PlatformDefinition, PlatformSettings } from "../../src/platforms/definition.js"
import { acme, type Answer, oauthError, scriptedHttp, settingsOf, tokens } from "../registry/scriptedHttp.js"

/** The OAuth client of `definition` over `http`, timed as the registry makes it. */
const client = (http: ReturnType<typeof scriptedHttp>, definition: PlatformDefinition = acme, overrides: Partial<PlatformSettings> = {}) => {
  const settings = settingsOf(definition, overrides)
  return makeOAuthClient(definition, settings, http.timed(settings.timeout))
}

/** A refresh against a token endpoint that answers `answer`; its failure. */
const refreshFailure = (answer: Answer) => Effect.flip(client(scriptedHttp(() => answer)).refresh(Redacted.make("rt-0")))

describe("OAuth client: token endpoint answers", () => {
  it.effect("400 invalid_grant is InvalidGrant, with the description kept", () =>
    Effect.gen(function*() {
      const error = yield* refreshFailure(oauthError("invalid_grant"))
      expect(error).toMatchObject({ _tag: "InvalidGrant", platform: "acme", description: "as the platform said" })
    }))

  it.effect("400 invalid_client is InvalidClient", () =>
    Effect.gen(function*() {
      expect(yield* refreshFailure(oauthError("invalid_client"))).toMatchObject({ _tag: "InvalidClient", error: "invalid_client" })
    }))

  it.effect("400 unauthorized_client is InvalidClient", () =>
    Effect.gen(function*() {
      expect(yield* refreshFailure(oauthError("unauthorized_client"))).toMatchObject({ _tag: "InvalidClient", error: "unauthorized_client" })
    }))

  it.effect("400 with an unknown error code is ProviderResponseInvalid naming the code", () =>
    Effect.gen(function*() {
      expect(yield* refreshFailure(oauthError("invalid_scope"))).toMatchObject({ _tag: "ProviderResponseInvalid", detail: "HTTP 400 error invalid_scope" })
    }))

  it.effect("401 invalid_client is InvalidClient", () =>
    Effect.gen(function*() {
      expect(yield* refreshFailure(oauthError("invalid_client", 401))).toMatchObject({ _tag: "InvalidClient", error: "invalid_client" })
    }))

  it.effect("429 with Retry-After in seconds is RateLimited with that delay", () =>
    Effect.gen(function*() {
      const error = yield* refreshFailure({ status: 429, json: {}, headers: { "retry-after": "30" } })
      expect(error).toMatchObject({ _tag: "RateLimited", retryAfterMs: 30_000 })
    }))

  it.effect("429 with Retry-After as an HTTP date is RateLimited until that date, by the Clock", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2026, 0, 1, 12, 0, 0))
      const error = yield* refreshFailure({ status: 429, json: {}, headers: { "retry-after": "Thu, 01 Jan 2026 12:02:00 GMT" } })
      expect(error).toMatchObject({ _tag: "RateLimited", retryAfterMs: 120_000 })
    }))

  it.effect("429 without Retry-After is RateLimited without a delay", () =>
    Effect.gen(function*() {
      const error = yield* refreshFailure({ status: 429, json: {} })
      expect(error._tag).toBe("RateLimited")
      expect(error._tag === "RateLimited" && error.retryAfterMs).toBeUndefined()
    }))

  it.effect("500 is ProviderUnavailable with the status", () =>
    Effect.gen(function*() {
      expect(yield* refreshFailure({ status: 500, text: "oops" })).toMatchObject({ _tag: "ProviderUnavailable", reason: "status", status: 500 })
    }))

  it.effect("503 is ProviderUnavailable with the status", () =>
    Effect.gen(function*() {
      expect(yield* refreshFailure({ status: 503, text: "down" })).toMatchObject({ _tag: "ProviderUnavailable", reason: "status", status: 503 })
    }))

  it.effect("a transport failure is ProviderUnavailable for the network", () =>
    Effect.gen(function*() {
      expect(yield* refreshFailure("network-error")).toMatchObject({ _tag: "ProviderUnavailable", reason: "network" })
    }))

  it.effect("no answer within the timeout is ProviderUnavailable for the timeout", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(refreshFailure({ status: 200, json: {}, delay: "1 minute" }))
      yield* TestClock.adjust("10 seconds")
      const error = yield* fiber
      expect(error).toMatchObject({ _tag: "ProviderUnavailable", reason: "timeout" })
    }))

  it.effect("200 with malformed JSON is ProviderResponseInvalid", () =>
    Effect.gen(function*() {
      const error = yield* refreshFailure({ status: 200, text: "{\"access_token\": \"abc\"", headers: { "content-type": "application/json" } })
      expect(error._tag).toBe("ProviderResponseInvalid")
    }))

  it.effect("200 with an HTML page is ProviderResponseInvalid", () =>
    Effect.gen(function*() {
      expect((yield* refreshFailure({ status: 200, text: "<html><body>Maintenance</body></html>" }))._tag).toBe("ProviderResponseInvalid")
    }))

  it.effect("400 with an HTML page is ProviderResponseInvalid, not an OAuth error", () =>
    Effect.gen(function*() {
      const error = yield* refreshFailure({ status: 400, text: "<html>Bad Request</html>" })
      expect(error).toMatchObject({ _tag: "ProviderResponseInvalid", detail: "HTTP 400 with a body that is not JSON" })
    }))

  it.effect("a token response without access_token is ProviderResponseInvalid", () =>
    Effect.gen(function*() {
      const error = yield* refreshFailure({ status: 200, json: { token_type: "Bearer", expires_in: 3600 } })
      expect(error).toMatchObject({ _tag: "ProviderResponseInvalid", detail: "the token response has no access_token" })
    }))

  it.effect("an unexpected status (302) is ProviderResponseInvalid", () =>
    Effect.gen(function*() {
      expect(yield* refreshFailure({ status: 302, text: "" })).toMatchObject({ _tag: "ProviderResponseInvalid", detail: "the token endpoint answered HTTP 302" })
    }))
})

describe("OAuth client: requests", () => {
  it.effect("HTTP Basic client authentication form-urlencodes id and secret before base64 (RFC 6749 §2.3.1)", () =>
    Effect.gen(function*() {
      const http = scriptedHttp(() => tokens())
      const basic = client(http, { ...acme, clientAuth: "basic" }, { clientId: "my app:1", clientSecret: Option.some(Redacted.make("s&cr+t/é ~")) })
      yield* basic.refresh(Redacted.make("rt-0"))
      const header = http.sent[0]?.headers["authorization"] ?? ""
      expect(header.startsWith("Basic ")).toBe(true)
      expect(Buffer.from(header.slice(6), "base64").toString("utf8")).toBe("my+app%3A1:s%26cr%2Bt%2F%C3%A9+%7E")
      // The credentials are in the header only, not in the body.
      expect(new URLSearchParams(http.sent[0]?.body).has("client_secret")).toBe(false)
    }))

  it.effect("body client authentication sends client_id and client_secret in the form", () =>
    Effect.gen(function*() {
      const http = scriptedHttp(() => tokens())
      yield* client(http).refresh(Redacted.make("rt-0"))
      const sent = http.sent[0]
      expect(sent?.headers["authorization"]).toBeUndefined()
      expect(Object.fromEntries(new URLSearchParams(sent?.body))).toEqual({
        grant_type: "refresh_token",
        refresh_token: "rt-0",
        client_id: "acme-id",
        client_secret: "acme-secret"
      })
    }))

  it.effect("a form-body platform sends application/x-www-form-urlencoded", () =>
    Effect.gen(function*() {
      const http = scriptedHttp(() => tokens())
      yield* client(http).exchangeCode({ code: "c-1", codeVerifier: Option.some(Redacted.make("v-1")), redirectUri: "https://app.example.com/oauth/acme/callback" })
      const sent = http.sent[0]
      expect(sent?.method).toBe("POST")
      expect(sent?.url.toString()).toBe("https://acme.example/token")
      expect(sent?.contentType).toBe("application/x-www-form-urlencoded")
      expect(Object.fromEntries(new URLSearchParams(sent?.body))).toMatchObject({
        grant_type: "authorization_code",
        code: "c-1",
        code_verifier: "v-1",
        redirect_uri: "https://app.example.com/oauth/acme/callback"
      })
    }))

  it.effect("a JSON-body platform with camelCase names sends a JSON object", () =>
    Effect.gen(function*() {
      const http = scriptedHttp(() => tokens())
      const json = client(http, { ...acme, tokenBody: "json", paramCase: "camel", client: "public" }, { tokenBody: "json", clientSecret: Option.none() })
      yield* json.refresh(Redacted.make("rt-0"))
      const sent = http.sent[0]
      expect(sent?.contentType).toBe("application/json")
      expect(JSON.parse(sent?.body ?? "")).toEqual({ grantType: "refresh_token", refreshToken: "rt-0", clientId: "acme-id" })
    }))

  it.effect("the authorize URL joins scopes with the platform's separator, here a comma", () =>
    Effect.gen(function*() {
      const http = scriptedHttp(() => ({ status: 500 }))
      const url = yield* client(http, { ...acme, scopeSeparator: "," }).authorizationUrl({
        state: Redacted.make("st-1"),
        codeChallenge: Option.some("ch-1"),
        redirectUri: "https://app.example.com/oauth/acme/callback"
      })
      const query = new URL(url).searchParams
      expect(query.get("scope")).toBe("read,write")
      expect(query.get("state")).toBe("st-1")
      expect(query.get("code_challenge_method")).toBe("S256")
      expect(http.sent).toHaveLength(0)
    }))
})

describe("OAuth client: revocation (RFC 7009)", () => {
  const revoke = (answer: Answer) => Effect.either(client(scriptedHttp(() => answer)).revoke(Redacted.make("rt-0")))

  it.effect("200 is revoked", () =>
    Effect.gen(function*() {
      expect((yield* revoke({ status: 200, text: "" }))._tag).toBe("Right")
    }))

  it.effect("400 invalid_token means already revoked", () =>
    Effect.gen(function*() {
      expect((yield* revoke(oauthError("invalid_token")))._tag).toBe("Right")
    }))

  it.effect("400 with another error code is a failure the caller sees", () =>
    Effect.gen(function*() {
      const result = yield* revoke(oauthError("unsupported_token_type"))
      expect(result._tag === "Left" && result.left).toMatchObject({ _tag: "ProviderResponseInvalid", detail: "HTTP 400 error unsupported_token_type" })
    }))

  it.effect("400 invalid_client is InvalidClient", () =>
    Effect.gen(function*() {
      const result = yield* revoke(oauthError("invalid_client"))
      expect(result._tag === "Left" && result.left._tag).toBe("InvalidClient")
    }))

  it.effect("400 without an OAuth error body is a failure", () =>
    Effect.gen(function*() {
      const result = yield* revoke({ status: 400, text: "<html>Bad Request</html>" })
      expect(result._tag === "Left" && result.left._tag).toBe("ProviderResponseInvalid")
    }))

  it.effect("503 is ProviderUnavailable", () =>
    Effect.gen(function*() {
      const result = yield* revoke({ status: 503, text: "" })
      expect(result._tag === "Left" && result.left._tag).toBe("ProviderUnavailable")
    }))

  it.effect("sends the token in a form body with the client's credentials", () =>
    Effect.gen(function*() {
      const http = scriptedHttp(() => ({ status: 200, text: "" }))
      yield* client(http).revoke(Redacted.make("rt-0"))
      expect(http.sent[0]?.url.toString()).toBe("https://acme.example/revoke")
      expect(Object.fromEntries(new URLSearchParams(http.sent[0]?.body))).toEqual({ token: "rt-0", client_id: "acme-id", client_secret: "acme-secret" })
    }))
})

describe("OAuth client: what every request carries", () => {
  const { version } = Schema.decodeUnknownSync(Schema.parseJson(Schema.Struct({ version: Schema.String })))(readFileSync("package.json", "utf8"))

  /** Acme with an account lookup, so that one flow makes a token, an API and a revocation request. */
  const lookingUp = (overrides: Partial<PlatformDefinition> = {}): PlatformDefinition => ({
    ...acme,
    endpoints: { ...acme.endpoints, me: "https://api.acme.example/me" },
    account: (context, grant) => Effect.as(context.getJson(context.settings.urls["me"] ?? "", grant.accessToken), { accountId: "", providerData: {} }),
    ...overrides
  })

  const everyKind = (definition: PlatformDefinition) =>
    Effect.gen(function*() {
      const http = scriptedHttp((sent) => (sent.url.pathname === "/me" ? { status: 200, json: { id: 1 } } : tokens()))
      const oauth = client(http, definition)
      const grant = yield* oauth.refresh(Redacted.make("rt-0"))
      yield* oauth.account(grant)
      yield* oauth.revoke(grant.accessToken)
      expect(http.sent.map((s) => s.url.pathname)).toEqual(["/token", "/me", "/revoke"])
      return http.sent
    })

  it.effect("every request carries User-Agent: oauth-integrations/<the version in package.json>", () =>
    Effect.gen(function*() {
      const sent = yield* everyKind(lookingUp())
      expect(sent.map((s) => s.headers["user-agent"])).toEqual(Array(3).fill(`oauth-integrations/${version}`))
    }))

  it.effect("a definition's headers go with every request beside the User-Agent, and may replace it", () =>
    Effect.gen(function*() {
      const added = yield* everyKind(lookingUp({ headers: { "X-Acme-Api-Version": "2024-01-01" } }))
      expect(added.map((s) => [s.headers["x-acme-api-version"], s.headers["user-agent"]])).toEqual(
        Array(3).fill(["2024-01-01", `oauth-integrations/${version}`])
      )
      const replaced = yield* everyKind(lookingUp({ headers: { "User-Agent": "acme-connector/1" } }))
      expect(replaced.map((s) => s.headers["user-agent"])).toEqual(Array(3).fill("acme-connector/1"))
    }))
})

describe("OAuth client: an error field in a token answer, whatever the status", () => {
  it.effect("200 with error invalid_grant is InvalidGrant, with the description kept", () =>
    Effect.gen(function*() {
      const error = yield* refreshFailure({ ...oauthError("invalid_grant"), status: 200 })
      expect(error).toMatchObject({ _tag: "InvalidGrant", platform: "acme", description: "as the platform said" })
    }))

  it.effect("200 with error invalid_client is InvalidClient", () =>
    Effect.gen(function*() {
      expect(yield* refreshFailure({ ...oauthError("invalid_client"), status: 200 })).toMatchObject({ _tag: "InvalidClient", error: "invalid_client" })
    }))

  it.effect("200 with an unknown error code is ProviderResponseInvalid naming the code", () =>
    Effect.gen(function*() {
      expect(yield* refreshFailure({ ...oauthError("bad_verification_code"), status: 200 })).toMatchObject({
        _tag: "ProviderResponseInvalid",
        detail: "HTTP 200 error bad_verification_code"
      })
    }))

  it.effect("an error code in an answer of another status (403) is the error it names", () =>
    Effect.gen(function*() {
      expect(yield* refreshFailure(oauthError("invalid_grant", 403))).toMatchObject({ _tag: "InvalidGrant" })
    }))

  it.effect("a 200 whose error is not an OAuth error code is read as a token response", () =>
    Effect.gen(function*() {
      expect(yield* refreshFailure({ status: 200, json: { error: { message: "nope" } } })).toMatchObject({
        _tag: "ProviderResponseInvalid",
        detail: "the token response has no access_token"
      })
    }))
})

describe("OAuth client: a definition's own revocation", () => {
  /** GitHub's way: DELETE /applications/{client_id}/grant, Basic client credentials, JSON {access_token}; 204 or 404 is gone. */
  const deletingGrants = (answer: Answer) => {
    const definition: PlatformDefinition = {
      ...acme,
      endpoints: { ...acme.endpoints, applications: "https://api.acme.example/applications" },
      revoke: (context, token) =>
        context.request({
          method: "DELETE",
          url: `${context.settings.urls["applications"]}/${context.settings.clientId}/grant`,
          json: { access_token: Redacted.value(token) },
          authorization: "client"
        }).pipe(Effect.flatMap((answer) =>
          answer.status === 204 || answer.status === 404
            ? Effect.void
            : new ProviderResponseInvalid({ platform: context.platform, detail: `HTTP ${answer.status} ${JSON.stringify(Option.getOrNull(answer.json))}` })
        ))
    }
    const http = scriptedHttp(() => answer)
    return { revoke: Effect.either(client(http, definition).revoke(Redacted.make("at-0"))), sent: http.sent }
  }

  it.effect("is used instead of RFC 7009, its request sent as it wrote it with the platform's headers", () =>
    Effect.gen(function*() {
      const { revoke, sent } = deletingGrants({ status: 204, text: "" })
      expect((yield* revoke)._tag).toBe("Right")
      expect(sent).toHaveLength(1)
      expect(sent[0]).toMatchObject({ method: "DELETE", contentType: "application/json", body: "{\"access_token\":\"at-0\"}" })
      expect(sent[0]?.url.toString()).toBe("https://api.acme.example/applications/acme-id/grant")
      expect(Buffer.from((sent[0]?.headers["authorization"] ?? "").replace(/^Basic /, ""), "base64").toString()).toBe("acme-id:acme-secret")
      expect(sent[0]?.headers["user-agent"]).toMatch(/^oauth-integrations\//)
    }))

  it.effect("reads the answer's status and JSON body, and fails as it says", () =>
    Effect.gen(function*() {
      expect((yield* deletingGrants({ status: 404, json: { message: "Not Found" } }).revoke)._tag).toBe("Right")
      const refused = yield* deletingGrants({ status: 422, json: { message: "Validation Failed" } }).revoke
      expect(refused._tag === "Left" && refused.left).toMatchObject({ _tag: "ProviderResponseInvalid", detail: "HTTP 422 {\"message\":\"Validation Failed\"}" })
    }))

  it.effect("fails as transient on a 5xx, like every other request", () =>
    Effect.gen(function*() {
      const down = yield* deletingGrants({ status: 503, text: "" }).revoke
      expect(down._tag === "Left" && down.left).toMatchObject({ _tag: "ProviderUnavailable", status: 503 })
    }))
})
