import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted, TestClock } from "effect"
import { makeOAuthClient } from "../../src/oauth/OAuthClient.js"
import type { PlatformDefinition, PlatformSettings } from "../../src/platforms/definition.js"
import { acme, type Answer, oauthError, scriptedHttp, settingsOf, tokens } from "../registry/scriptedHttp.js"

const client = (definition: PlatformDefinition = acme, overrides: Partial<PlatformSettings> = {}) =>
  makeOAuthClient(definition, settingsOf(definition, overrides))

/** A refresh against a token endpoint that answers `answer`; its failure. */
const refreshFailure = (answer: Answer) =>
  Effect.flip(client().refresh(Redacted.make("rt-0"))).pipe(Effect.provide(scriptedHttp(() => answer).layer))

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
      const basic = client({ ...acme, clientAuth: "basic" }, { clientId: "my app:1", clientSecret: Option.some(Redacted.make("s&cr+t/é ~")) })
      yield* basic.refresh(Redacted.make("rt-0")).pipe(Effect.provide(http.layer))
      const header = http.sent[0]?.headers["authorization"] ?? ""
      expect(header.startsWith("Basic ")).toBe(true)
      expect(Buffer.from(header.slice(6), "base64").toString("utf8")).toBe("my+app%3A1:s%26cr%2Bt%2F%C3%A9+%7E")
      // The credentials are in the header only, not in the body.
      expect(new URLSearchParams(http.sent[0]?.body).has("client_secret")).toBe(false)
    }))

  it.effect("body client authentication sends client_id and client_secret in the form", () =>
    Effect.gen(function*() {
      const http = scriptedHttp(() => tokens())
      yield* client().refresh(Redacted.make("rt-0")).pipe(Effect.provide(http.layer))
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
      yield* client().exchangeCode({ code: "c-1", codeVerifier: Option.some(Redacted.make("v-1")), redirectUri: "https://app.example.com/oauth/acme/callback" }).pipe(
        Effect.provide(http.layer)
      )
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
      const json = client({ ...acme, tokenBody: "json", paramCase: "camel", client: "public" }, { tokenBody: "json", clientSecret: Option.none() })
      yield* json.refresh(Redacted.make("rt-0")).pipe(Effect.provide(http.layer))
      const sent = http.sent[0]
      expect(sent?.contentType).toBe("application/json")
      expect(JSON.parse(sent?.body ?? "")).toEqual({ grantType: "refresh_token", refreshToken: "rt-0", clientId: "acme-id" })
    }))

  it.effect("the authorize URL joins scopes with the platform's separator, here a comma", () =>
    Effect.gen(function*() {
      const http = scriptedHttp(() => ({ status: 500 }))
      const url = yield* client({ ...acme, scopeSeparator: "," }).authorizationUrl({
        state: Redacted.make("st-1"),
        codeChallenge: Option.some("ch-1"),
        redirectUri: "https://app.example.com/oauth/acme/callback"
      }).pipe(Effect.provide(http.layer))
      const query = new URL(url).searchParams
      expect(query.get("scope")).toBe("read,write")
      expect(query.get("state")).toBe("st-1")
      expect(query.get("code_challenge_method")).toBe("S256")
      expect(http.sent).toHaveLength(0)
    }))
})

describe("OAuth client: revocation (RFC 7009)", () => {
  const revoke = (answer: Answer) => {
    const http = scriptedHttp(() => answer)
    return Effect.either(client().revoke(Redacted.make("rt-0"))).pipe(Effect.provide(http.layer))
  }

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
      yield* client().revoke(Redacted.make("rt-0")).pipe(Effect.provide(http.layer))
      expect(http.sent[0]?.url.toString()).toBe("https://acme.example/revoke")
      expect(Object.fromEntries(new URLSearchParams(http.sent[0]?.body))).toEqual({ token: "rt-0", client_id: "acme-id", client_secret: "acme-secret" })
    }))
})
