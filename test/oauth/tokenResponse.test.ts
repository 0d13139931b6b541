import { describe, expect, it } from "@effect/vitest"
import { Either, Option, Redacted } from "effect"
import { decodeTokenGrant } from "../../src/oauth/OAuthClient.js"
import { parseRetryAfter, sanitizeDescription } from "../../src/oauth/http.js"

const decode = (body: unknown) => decodeTokenGrant("gsc", body)

describe("token responses", () => {
  it("reads OAuth's snake_case answer and keeps no token among the other fields", () => {
    const grant = Either.getOrThrow(decode({
      access_token: "at",
      refresh_token: "rt",
      id_token: "jwt",
      expires_in: 3599,
      scope: "a b",
      token_type: "Bearer",
      blog_id: 7
    }))
    expect(Redacted.value(grant.accessToken)).toBe("at")
    expect(Option.map(grant.refreshToken, Redacted.value)).toEqual(Option.some("rt"))
    expect(grant.expiresIn).toEqual(Option.some(3599))
    expect(grant.scope).toEqual(Option.some("a b"))
    expect(grant.fields).toEqual({ expires_in: 3599, scope: "a b", token_type: "Bearer", blog_id: 7 })
  })

  it("reads camelCase and a numeric string for the lifetime", () => {
    const grant = Either.getOrThrow(decode({ accessToken: "at", refreshToken: "rt", expiresIn: "14400" }))
    expect(Redacted.value(grant.accessToken)).toBe("at")
    expect(grant.expiresIn).toEqual(Option.some(14400))
    expect(grant.fields).toEqual({ expiresIn: "14400" })
  })

  it("treats a missing lifetime as unknown and a missing refresh token as none", () => {
    const grant = Either.getOrThrow(decode({ access_token: "at", token_type: "bearer" }))
    expect(grant.expiresIn).toEqual(Option.none())
    expect(grant.refreshToken).toEqual(Option.none())
  })

  it("refuses answers without an access token or with a nonsense lifetime", () => {
    for (const body of [{}, { access_token: "" }, { access_token: "a", expires_in: -5 }, { access_token: "a", expires_in: "soon" }, [], "x", null]) {
      expect(Either.isLeft(decode(body)), JSON.stringify(body)).toBe(true)
    }
  })
})

describe("provider text", () => {
  it("strips what could be a token or a code from a description", () => {
    const text = sanitizeDescription("Code 4/0AfJohXk3b9Q8zYk2mNw7pLq1RtVs was already redeemed")
    expect(text).toBe("Code [redacted] was already redeemed")
  })

  it("shortens long descriptions", () => {
    expect(sanitizeDescription("word ".repeat(100)).length).toBe(200)
  })
})

describe("Retry-After", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("120", 0)).toBe(120_000)
    expect(parseRetryAfter("Thu, 01 Jan 1970 00:00:30 GMT", 10_000)).toBe(20_000)
    expect(parseRetryAfter("whenever", 0)).toBeUndefined()
    expect(parseRetryAfter(undefined, 0)).toBeUndefined()
  })
})
