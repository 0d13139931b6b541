import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { checkIssuer, issuerForLog } from "../../src/oauth/issuer.js"
import { bing } from "../../src/platforms/bing.js"
import type { PlatformDefinition } from "../../src/platforms/definition.js"
import { gsc } from "../../src/platforms/gsc.js"

const check = (definition: PlatformDefinition, iss: string | undefined) => Effect.either(checkIssuer(definition, iss))

const strict: PlatformDefinition = { ...gsc, key: "acme", issuer: { identifier: "https://auth.acme.example", alwaysSent: true } }

describe("the issuer of an authorization response (RFC 9207)", () => {
  it("is Google's for GSC, which is not relied on to always send it", () => {
    expect(gsc.issuer).toEqual({ identifier: "https://accounts.google.com", alwaysSent: false })
  })

  it.effect("is accepted when it is the platform's", () =>
    Effect.gen(function*() {
      expect(Either.isRight(yield* check(gsc, "https://accounts.google.com"))).toBe(true)
    }))

  it.effect("is refused when it names another issuer", () =>
    Effect.gen(function*() {
      const refused = yield* check(gsc, "https://attacker.example")
      expect(Either.isLeft(refused) && refused.left).toMatchObject({ _tag: "IssuerMismatch", platform: "gsc", reason: "different" })
    }))

  it.effect("is compared as a plain string: a trailing slash, another case or an empty value is another issuer", () =>
    Effect.gen(function*() {
      for (const iss of ["https://accounts.google.com/", "https://Accounts.Google.com", "https://accounts.google.com:443", ""]) {
        expect(Either.isLeft(yield* check(gsc, iss)), iss).toBe(true)
      }
    }))

  it.effect("may be missing where the platform does not always send it", () =>
    Effect.gen(function*() {
      expect(Either.isRight(yield* check(gsc, undefined))).toBe(true)
    }))

  it.effect("must be present where the platform always sends it", () =>
    Effect.gen(function*() {
      const refused = yield* check(strict, undefined)
      expect(Either.isLeft(refused) && refused.left).toMatchObject({ _tag: "IssuerMismatch", platform: "acme", reason: "missing" })
      expect(Either.isRight(yield* check(strict, "https://auth.acme.example"))).toBe(true)
    }))

  it.effect("is not checked for a platform that names no issuer", () =>
    Effect.gen(function*() {
      expect(bing.issuer).toBeUndefined()
      expect(Either.isRight(yield* check(bing, "https://attacker.example"))).toBe(true)
      expect(Either.isRight(yield* check(bing, undefined))).toBe(true)
    }))

  it("is logged only as its origin, or not at all when it is not an http(s) URL", () => {
    expect(issuerForLog("https://attacker.example/<script>alert(1)</script>?secret=1#x")).toBe("https://attacker.example")
    expect(issuerForLog("https://user:pass@attacker.example:8443/p")).toBe("https://attacker.example:8443")
    expect(issuerForLog("javascript:alert(1)")).toBe("(not an http(s) URL)")
    expect(issuerForLog("\u001b[31mred")).toBe("(not an http(s) URL)")
    expect(issuerForLog(`https://${"a".repeat(300)}.example`).length).toBeLessThanOrEqual(100)
  })
})
