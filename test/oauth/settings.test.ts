import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { bing } from "../../src/platforms/bing.js"
import type { PlatformDefinition } from "../../src/platforms/definition.js"
import { gsc } from "../../src/platforms/gsc.js"
import { type Availability, readSettings } from "../../src/oauth/settings.js"
import { wix } from "../../src/platforms/wix.js"
import { wordpress } from "../../src/platforms/wordpress.js"
import type { DeployEnv } from "../../src/config/DeployEnv.js"
import { testSettings } from "../support/config.js"

const app = testSettings({ frontendUrl: new URL("https://app.example.com") })

const credentials = {
  BING_CLIENT_ID: "bing-id",
  BING_CLIENT_SECRET: "bing-secret",
  BING_REDIRECT_URI: "https://app.example.com/oauth/bing/callback",
  WIX_CLIENT_ID: "wix-id",
  WIX_REDIRECT_URI: "https://app.example.com/oauth/wix/callback",
  GSC_CLIENT_ID: "gsc-id",
  GSC_CLIENT_SECRET: "gsc-secret",
  GSC_REDIRECT_URI: "https://app.example.com/oauth/gsc/callback",
  WORDPRESS_CLIENT_ID: "wp-id",
  WORDPRESS_CLIENT_SECRET: "wp-secret",
  WORDPRESS_REDIRECT_URI: "https://app.example.com/oauth/wordpress/callback"
}

const read = (definition: PlatformDefinition, env: Record<string, string>, deployEnv: DeployEnv = "development") =>
  readSettings(definition, { ...app, deployEnv }).pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({ ...credentials, ...env }))))
  )

const configured = (availability: Availability) => {
  if (availability._tag !== "Configured") throw new Error(`expected configured, got ${availability._tag}: ${availability.problems.join("; ")}`)
  return availability.settings
}

describe("Bing's refresh URL", () => {
  it.effect("follows BING_TOKEN_URL when BING_REFRESH_URL is not set, so a proxy sees every refresh", () =>
    Effect.gen(function*() {
      const settings = configured(yield* read(bing, { BING_TOKEN_URL: "https://proxy.example/bing/token" }))
      expect(settings.urls["refresh"]).toBe("https://proxy.example/bing/token")
    }))

  it.effect("is Bing's token URL when neither is set", () =>
    Effect.gen(function*() {
      const settings = configured(yield* read(bing, {}))
      expect(settings.urls["refresh"]).toBe("https://www.bing.com/webmasters/oauth/token")
    }))

  it.effect("is BING_REFRESH_URL when that is set", () =>
    Effect.gen(function*() {
      const settings = configured(yield* read(bing, {
        BING_TOKEN_URL: "https://proxy.example/bing/token",
        BING_REFRESH_URL: "https://proxy.example/bing/refresh"
      }))
      expect(settings.urls["refresh"]).toBe("https://proxy.example/bing/refresh")
      expect(settings.urls["token"]).toBe("https://proxy.example/bing/token")
    }))
})

describe("<KEY>_PKCE", () => {
  it.effect("defaults to what the platform supports: on for GSC (supported) and Wix (required), off for Bing (unconfirmed) and WordPress (none)", () =>
    Effect.gen(function*() {
      expect(configured(yield* read(gsc, {})).pkce).toBe(true)
      expect(configured(yield* read(wix, {})).pkce).toBe(true)
      expect(configured(yield* read(bing, {})).pkce).toBe(false)
      expect(configured(yield* read(wordpress, {})).pkce).toBe(false)
    }))

  it.effect("turns PKCE on or off for a confidential client in development", () =>
    Effect.gen(function*() {
      expect(configured(yield* read(bing, { BING_PKCE: "true" })).pkce).toBe(true)
      expect(configured(yield* read(gsc, { GSC_PKCE: "false" })).pkce).toBe(false)
    }))

  it.effect("cannot turn PKCE off outside development where the platform supports it: the platform is misconfigured, naming GSC_PKCE and the rule", () =>
    Effect.gen(function*() {
      for (const deployEnv of ["staging", "production"] as const) {
        expect(yield* read(gsc, { GSC_PKCE: "false" }, deployEnv), deployEnv).toEqual({
          _tag: "Misconfigured",
          problems: ["GSC_PKCE: must be true outside development: the platform supports PKCE, which stops authorization code injection (RFC 9700 §4.5)"]
        })
        expect(configured(yield* read(gsc, { GSC_PKCE: "true" }, deployEnv)).pkce, deployEnv).toBe(true)
      }
    }))

  it.effect("where PKCE support is unconfirmed (Bing), or absent (WordPress), it may be sent or not outside development", () =>
    Effect.gen(function*() {
      expect(configured(yield* read(bing, {}, "production")).pkce).toBe(false)
      expect(configured(yield* read(bing, { BING_PKCE: "true" }, "production")).pkce).toBe(true)
      expect(configured(yield* read(wordpress, { WORDPRESS_PKCE: "false" }, "production")).pkce).toBe(false)
    }))

  it.effect("cannot be turned off where the platform requires PKCE, even in development", () =>
    Effect.gen(function*() {
      const strict: PlatformDefinition = { ...gsc, key: "acme", displayName: "Acme", pkce: "required" }
      const env = { ACME_CLIENT_ID: "acme-id", ACME_CLIENT_SECRET: "acme-secret", ACME_REDIRECT_URI: "https://app.example.com/oauth/acme/callback" }
      expect(configured(yield* read(strict, env)).pkce).toBe(true)
      expect(yield* read(strict, { ...env, ACME_PKCE: "false" })).toEqual({
        _tag: "Misconfigured",
        problems: ["ACME_PKCE: must be true: the platform requires PKCE"]
      })
    }))

  it.effect("cannot be turned off for a public client, which has nothing else binding the code to it", () =>
    Effect.gen(function*() {
      expect(yield* read(wix, { WIX_PKCE: "false" })).toEqual({
        _tag: "Misconfigured",
        problems: ["WIX_PKCE: must be true for a public client (no client secret)"]
      })
    }))

  it.effect("must be a boolean", () =>
    Effect.gen(function*() {
      expect(yield* read(bing, { BING_PKCE: "sometimes" })).toEqual({ _tag: "Misconfigured", problems: ["BING_PKCE: must be true or false"] })
    }))
})

describe("<KEY>_REDIRECT_URI", () => {
  it.effect("on another platform's callback path makes the platform misconfigured, naming the variable and the rule", () =>
    Effect.gen(function*() {
      expect(yield* read(gsc, { GSC_REDIRECT_URI: "https://app.example.com/oauth/bing/callback" })).toEqual({
        _tag: "Misconfigured",
        problems: ["GSC_REDIRECT_URI: path must end with /oauth/gsc/callback, this platform's callback path (got /oauth/bing/callback)"]
      })
    }))
})
