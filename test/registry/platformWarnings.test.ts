import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Logger } from "effect"
import * as UndiciClient from "../../src/oauth/undiciClient.js"
import { PlatformCatalog, ProviderRegistry, warnMisconfiguredPlatforms } from "../../src/registry/ProviderRegistry.js"
import type { Settings } from "../../src/config/Settings.js"
import { testConfig } from "../support/config.js"

const registryWith = (env: Record<string, string>, settings: Partial<Settings>) =>
  ProviderRegistry.DefaultWithoutDependencies.pipe(
    Layer.provide([PlatformCatalog.Default, UndiciClient.layer, testConfig(settings)]),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
  )

const warningsWith = (env: Record<string, string>, settings: Partial<Settings> = {}) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    yield* warnMisconfiguredPlatforms.pipe(
      Effect.provide(registryWith(env, settings)),
      Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => lines.push(String(message)))))
    )
    return lines
  })

describe("platform warnings at start", () => {
  it.effect("log one line per problem of a misconfigured platform, naming the variable", () =>
    Effect.gen(function*() {
      const lines = yield* warningsWith({
        GSC_CLIENT_ID: "gsc-id",
        GSC_CLIENT_SECRET: "gsc-secret",
        GSC_REDIRECT_URI: "https://app.example.com/oauth/gsc/callback",
        GSC_AUTHORIZE_URL: "not a url",
        GSC_TOKEN_URL: "also not a url"
      })
      expect(lines).toHaveLength(2)
      expect(lines[0]).toMatch(/^platform gsc is misconfigured and unavailable until fixed: GSC_AUTHORIZE_URL: /)
      expect(lines[1]).toMatch(/^platform gsc is misconfigured and unavailable until fixed: GSC_TOKEN_URL: /)
    }))

  it.effect("name a redirect URI that is not a URL at start, not at first use", () =>
    Effect.gen(function*() {
      const lines = yield* warningsWith({ GSC_CLIENT_ID: "gsc-id", GSC_CLIENT_SECRET: "gsc-secret", GSC_REDIRECT_URI: "notaurl" })
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/^platform gsc is misconfigured and unavailable until fixed: GSC_REDIRECT_URI: /)
    }))

  it.effect("name GSC_PKCE=false outside development, and only there", () =>
    Effect.gen(function*() {
      const env = {
        GSC_CLIENT_ID: "gsc-id",
        GSC_CLIENT_SECRET: "gsc-secret",
        GSC_REDIRECT_URI: "https://app.example.com/oauth/gsc/callback",
        GSC_PKCE: "false"
      }
      expect(yield* warningsWith(env, { deployEnv: "production" })).toEqual([
        "platform gsc is misconfigured and unavailable until fixed: GSC_PKCE: must be true outside development: the platform supports PKCE, which stops authorization code injection (RFC 9700 §4.5)"
      ])
      expect(yield* warningsWith(env)).toEqual([])
    }))

  it.effect("say nothing about platforms that are configured or simply not configured", () =>
    Effect.gen(function*() {
      const lines = yield* warningsWith({
        BING_CLIENT_ID: "bing-id",
        BING_CLIENT_SECRET: "bing-secret",
        BING_REDIRECT_URI: "https://app.example.com/oauth/bing/callback"
      })
      expect(lines).toEqual([])
    }))
})
