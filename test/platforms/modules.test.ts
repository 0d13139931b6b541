import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option, Redacted } from "effect"
import { InvalidGrant, type ProviderError, ProviderUnavailable } from "../../src/domain/errors.js"
import type { PlatformContext, TokenGrant } from "../../src/platforms/definition.js"
import { memberIdOf } from "../../src/platforms/wix.js"
import { wordpress } from "../../src/platforms/wordpress.js"
import { failureTagged } from "../support/effects.js"
import { wixAccessToken } from "../support/platforms/index.js"

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
const header = b64({ alg: "RS256", kid: "k" })

describe("Wix member id (display only)", () => {
  it("is read from a token as Wix issues it: OauthNG.JWS. prefix, data a JSON string", () => {
    expect(memberIdOf(wixAccessToken("member-7"))).toBe("member-7")
  })

  it("is read from a plain three-part JWT too, data a JSON string or an object", () => {
    const data = { instance: { siteMemberId: "member-8" } }
    expect(memberIdOf(`${header}.${b64({ data: JSON.stringify(data) })}.sig`)).toBe("member-8")
    expect(memberIdOf(`${header}.${b64({ data })}.sig`)).toBe("member-8")
    expect(memberIdOf(`OauthNG.JWS.${header}.${b64({ data })}.sig`)).toBe("member-8")
  })

  it("is null, never a failure, for anything else", () => {
    for (
      const token of [
        "opaque-token",
        "a.b",
        `${header}.not-base64-json.sig`,
        `${header}.${b64({ data: "not json" })}.sig`,
        `${header}.${b64({ data: { instance: {} } })}.sig`,
        `OauthNG.JWS.${header}.${b64({ sub: "x" })}.sig`
      ]
    ) {
      expect(memberIdOf(token), token).toBeNull()
    }
  })
})

describe("WordPress.com account", () => {
  const grant = (fields: Record<string, unknown>): TokenGrant => ({
    accessToken: Redacted.make("wp-at"),
    refreshToken: Option.none(),
    expiresIn: Option.none(),
    scope: Option.some("global"),
    tokenType: Option.some("bearer"),
    fields
  })

  const context = (me: Effect.Effect<unknown, ProviderError>) => {
    const calls: Array<string> = []
    const unused = () => Effect.dieMessage("unused")
    const value: PlatformContext = {
      platform: "wordpress",
      settings: {
        clientId: "id",
        clientSecret: Option.none(),
        redirectUri: "https://app.example.com/oauth/wordpress/callback",
        urls: { me: "https://wp.example/rest/v1/me" },
        overridden: new Set(),
        scopes: ["global"],
        tokenBody: "form",
        pkce: false,
        timeout: Duration.seconds(1)
      },
      getJson: (url) => Effect.zipRight(Effect.sync(() => calls.push(url)), me),
      postJson: unused,
      tokenRequest: unused,
      request: unused
    }
    return { value, calls }
  }
  // The context is the only way out: its getJson is the only helper the lookup may use.
  const account = (context: PlatformContext, g: TokenGrant) => wordpress.account?.(context, g) ?? Effect.dieMessage("wordpress has an account lookup")

  it.effect("of a single-blog token is its blog, without asking /me", () =>
    Effect.gen(function*() {
      const { value, calls } = context(Effect.fail(new ProviderUnavailable({ platform: "wordpress", reason: "network" })))
      const found = yield* account(value, grant({ blog_id: "777", blog_url: "https://blog.example.com" }))
      expect(found).toEqual({ accountId: "777", providerData: { blog_id: 777, blog_url: "https://blog.example.com" } })
      expect(calls).toEqual([])
    }))

  it.effect("of a global token is the /me user", () =>
    Effect.gen(function*() {
      const { value } = context(Effect.succeed({ ID: 4242, username: "writer" }))
      const found = yield* account(value, grant({ blog_id: 0, blog_url: null }))
      expect(found).toEqual({ accountId: "4242", providerData: { blog_id: 0, blog_url: null, username: "writer" } })
    }))

  it.effect("of a global token fails transiently when /me cannot be reached", () =>
    Effect.gen(function*() {
      const { value } = context(Effect.fail(new ProviderUnavailable({ platform: "wordpress", reason: "status", status: 502 })))
      yield* failureTagged(account(value, grant({ blog_id: "0" })), "ProviderUnavailable")
    }))

  it.effect("of a global token fails as unreadable when /me has no user id, or refuses the new token", () =>
    Effect.gen(function*() {
      for (const me of [Effect.succeed({ username: "writer" }), Effect.succeed({ ID: "" }), Effect.fail(new InvalidGrant({ platform: "wordpress" }))]) {
        const { value } = context(me)
        yield* failureTagged(account(value, grant({ blog_id: 0 })), "ProviderResponseInvalid")
      }
    }))
})
