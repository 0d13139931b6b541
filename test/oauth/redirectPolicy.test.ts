import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { checkRedirectUri, checkReturnTo, type OriginPolicy } from "../../src/oauth/redirectPolicy.js"

const production: OriginPolicy = {
  deployEnv: "production",
  frontendUrl: new URL("https://app.example.com/dashboard"),
  allowedOrigins: ["https://admin.example.com"],
  strictEnvMatch: false
}
const development: OriginPolicy = { ...production, deployEnv: "development", frontendUrl: new URL("http://localhost:3000") }

const rule = (value: string | undefined, policy: OriginPolicy) =>
  Either.match(checkRedirectUri("gsc", "GSC_REDIRECT_URI", value, policy), { onLeft: (e) => e.message, onRight: () => "ok" })

describe("redirect URI policy", () => {
  it("accepts an https URI on FRONTEND_URL's origin", () => {
    expect(rule("https://app.example.com/oauth/gsc/callback", production)).toBe("ok")
  })

  it("accepts an origin listed in OAUTH_ALLOWED_ORIGINS", () => {
    expect(rule("https://admin.example.com/oauth/gsc/callback", production)).toBe("ok")
  })

  it("requires the variable to be set: there is no fallback", () => {
    expect(rule(undefined, production)).toBe("GSC_REDIRECT_URI: must be set (there is no default redirect URI)")
    expect(rule("  ", production)).toBe("GSC_REDIRECT_URI: must be set (there is no default redirect URI)")
  })

  it("requires an absolute URL", () => {
    expect(rule("/oauth/gsc/callback", production)).toBe("GSC_REDIRECT_URI: must be an absolute URL")
  })

  it("requires http(s)", () => {
    expect(rule("ftp://app.example.com/oauth/gsc/callback", production)).toBe("GSC_REDIRECT_URI: must be an http(s) URL")
  })

  it("requires https outside development", () => {
    expect(rule("http://app.example.com/oauth/gsc/callback", production)).toBe("GSC_REDIRECT_URI: must use https when DEPLOY_ENV is production")
    expect(rule("http://app.example.com/oauth/gsc/callback", { ...production, deployEnv: "staging" })).toBe(
      "GSC_REDIRECT_URI: must use https when DEPLOY_ENV is staging"
    )
    expect(rule("http://localhost:3000/oauth/gsc/callback", development)).toBe("ok")
  })

  it("refuses another origin", () => {
    expect(rule("https://evil.example.net/oauth/gsc/callback", production)).toBe(
      "GSC_REDIRECT_URI: origin https://evil.example.net must be FRONTEND_URL's origin or one of OAUTH_ALLOWED_ORIGINS (https://app.example.com, https://admin.example.com)"
    )
    expect(rule("https://app.example.com:8443/oauth/gsc/callback", production)).toMatch(/origin https:\/\/app.example.com:8443 must be/)
  })

  it("refuses local hosts under production", () => {
    for (const host of ["localhost", "127.0.0.1", "[::1]", "shop.local"]) {
      const policy = { ...production, allowedOrigins: [`https://${host}`] }
      expect(rule(`https://${host}/oauth/gsc/callback`, policy)).toBe(
        `GSC_REDIRECT_URI: must not point at a local host (${host}) when DEPLOY_ENV is production`
      )
    }
  })

  it("refuses a production-looking host under development only when STRICT_ENV_MATCH is on", () => {
    const policy = { ...development, allowedOrigins: ["https://app.example.com"] }
    expect(rule("https://app.example.com/oauth/gsc/callback", policy)).toBe("ok")
    expect(rule("https://app.example.com/oauth/gsc/callback", { ...policy, strictEnvMatch: true })).toBe(
      "GSC_REDIRECT_URI: must point at a local host when DEPLOY_ENV is development and STRICT_ENV_MATCH is on (got app.example.com)"
    )
  })

  it("requires the path to end with the platform's own callback path", () => {
    expect(rule("https://app.example.com/oauth/bing/callback", production)).toBe(
      "GSC_REDIRECT_URI: path must end with /oauth/gsc/callback, this platform's callback path (got /oauth/bing/callback)"
    )
    expect(rule("https://app.example.com/oauth/gsc/callback/", production)).toMatch(/path must end with \/oauth\/gsc\/callback/)
    expect(rule("https://app.example.com/api/oauth/gsc/callback", production)).toBe("ok")
  })

  it("refuses credentials and fragments", () => {
    expect(rule("https://user:pw@app.example.com/oauth/gsc/callback", production)).toBe("GSC_REDIRECT_URI: must not contain credentials")
    expect(rule("https://app.example.com/oauth/gsc/callback#x", production)).toBe("GSC_REDIRECT_URI: must not contain a fragment")
  })
})

describe("return_to policy", () => {
  const verdict = (value: string) => Either.match(checkReturnTo(value, production), { onLeft: (r) => r, onRight: () => "ok" })

  it("accepts a page on an allowed origin", () => {
    expect(verdict("https://app.example.com/settings/integrations?tab=seo")).toBe("ok")
    expect(verdict("https://admin.example.com/")).toBe("ok")
  })

  it("refuses open-redirect attempts", () => {
    for (const attempt of [
      "https://evil.example",
      "//evil.example",
      "/\\evil.example",
      "javascript:alert(1)",
      "JaVaScRiPt:alert(1)",
      "https://app.example.com@evil.example/",
      "https://app.example.com:pw@evil.example/",
      "https://evil.example/https://app.example.com/",
      "https://app.example.com.evil.example/",
      " https://app.example.com/",
      "https://app.example.com\\@evil.example",
      "data:text/html,<script>alert(1)</script>"
    ]) {
      expect(verdict(attempt), attempt).not.toBe("ok")
    }
  })
})
