import { HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Fiber, Layer, Redacted, TestClock } from "effect"
import { PlatformHttp } from "../../src/oauth/PlatformHttp.js"
import type { PlatformDefinition } from "../../src/platforms/definition.js"
import { PlatformCatalog, ProviderRegistry } from "../../src/registry/ProviderRegistry.js"
import { idleHealth } from "../../src/resilience/CircuitBreaker.js"
import { testConfig, testSettings } from "../support/config.js"
import { failureTagged } from "../support/effects.js"
import { plainDefinition as definition, scriptedHttp } from "./scriptedHttp.js"

/** Clients that must not be called: building providers makes no request. */
const NoHttp = Layer.succeed(PlatformHttp, {
  client: () => HttpClient.make((request) => Effect.die(`unexpected request to ${request.url}`))
})

const registryWith = (
  definitions: ReadonlyArray<PlatformDefinition>,
  env: Record<string, string>,
  options: { readonly http?: Layer.Layer<PlatformHttp>; readonly leaseDuration?: Duration.Duration } = {}
) =>
  ProviderRegistry.DefaultWithoutDependencies.pipe(
    Layer.provide([
      PlatformCatalog.layer(definitions),
      options.http ?? NoHttp,
      testConfig({
        frontendUrl: new URL("https://app.example.com"),
        tokens: { ...testSettings().tokens, leaseDuration: options.leaseDuration ?? Duration.minutes(2) }
      })
    ]),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
  )

const configured = {
  ALPHA_CLIENT_ID: "alpha-id",
  ALPHA_CLIENT_SECRET: "alpha-secret",
  ALPHA_REDIRECT_URI: "https://app.example.com/oauth/alpha/callback"
}

describe("provider registry", () => {
  it.effect("get of an unknown key fails with UnknownPlatform listing the known keys", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const error = yield* failureTagged(registry.get("myspace"), "UnknownPlatform")
      expect(error.known).toEqual(["alpha", "beta"])
    }).pipe(Effect.provide(registryWith([definition("alpha"), definition("beta")], configured))))

  it.effect("a platform without credentials is not configured, and authorize on it names the variables to set", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const error = yield* failureTagged(registry.get("beta"), "PlatformNotConfigured")
      expect(error.problems).toEqual(["set BETA_CLIENT_ID, BETA_CLIENT_SECRET, BETA_REDIRECT_URI"])
      const listing = yield* registry.list
      expect(listing.map((p) => [p.key, p.state])).toEqual([["alpha", "configured"], ["beta", "not_configured"]])
    }).pipe(Effect.provide(registryWith([definition("alpha"), definition("beta")], configured))))

  it.effect("an invalid redirect URI makes that platform misconfigured with the reason; the others keep working", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const listing = yield* registry.list
      expect(listing.find((p) => p.key === "beta")).toMatchObject({
        configured: false,
        state: "misconfigured",
        problems: ["BETA_REDIRECT_URI: origin https://evil.example must be FRONTEND_URL's origin or one of OAUTH_ALLOWED_ORIGINS (https://app.example.com)"]
      })
      const alpha = yield* registry.get("alpha")
      expect(alpha.settings.redirectUri).toBe("https://app.example.com/oauth/alpha/callback")
    }).pipe(Effect.provide(registryWith([definition("alpha"), definition("beta")], {
      ...configured,
      BETA_CLIENT_ID: "b",
      BETA_CLIENT_SECRET: "s",
      BETA_REDIRECT_URI: "https://evil.example/oauth/beta/callback"
    }))))

  it.effect("a confidential client without a secret, a bad endpoint override, a bad retry setting: each named", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const [alpha, beta] = yield* registry.list
      expect(alpha?.problems).toEqual(["ALPHA_TOKEN_URL: must be an absolute http(s) URL"])
      expect(beta?.problems).toEqual(["BETA_CLIENT_SECRET: is required"])
      const gamma = yield* failureTagged(registry.get("gamma"), "PlatformNotConfigured")
      expect(gamma.problems).toEqual(["GAMMA_RETRY_MAX: must be an integer from 0 to 20"])
      expect((yield* registry.list)[2]).toMatchObject({ state: "misconfigured", problems: ["GAMMA_RETRY_MAX: must be an integer from 0 to 20"] })
    }).pipe(Effect.provide(registryWith([definition("alpha"), definition("beta"), definition("gamma")], {
      ...configured,
      ALPHA_TOKEN_URL: "not a url",
      BETA_CLIENT_ID: "b",
      BETA_REDIRECT_URI: "https://app.example.com/oauth/beta/callback",
      GAMMA_CLIENT_ID: "g",
      GAMMA_CLIENT_SECRET: "s",
      GAMMA_REDIRECT_URI: "https://app.example.com/oauth/gamma/callback",
      GAMMA_RETRY_MAX: "lots"
    }))))

  it.effect("a public client needs no secret", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const provider = yield* registry.get("pub")
      expect(provider.settings.clientId).toBe("p")
    }).pipe(Effect.provide(registryWith([definition("pub", { client: "public" })], {
      PUB_CLIENT_ID: "p",
      PUB_REDIRECT_URI: "https://app.example.com/oauth/pub/callback"
    }))))

  it.effect("endpoint overrides must be https outside development", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const [alpha] = yield* registry.list
      expect(alpha?.problems).toEqual(["ALPHA_TOKEN_URL: must use https outside development"])
    }).pipe(Effect.provide(
      ProviderRegistry.DefaultWithoutDependencies.pipe(
        Layer.provide([PlatformCatalog.layer([definition("alpha")]), NoHttp, testConfig({ deployEnv: "production", frontendUrl: new URL("https://app.example.com") })]),
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({ ...configured, ALPHA_TOKEN_URL: "http://proxy.internal/token" })))))
      )
    )))

  it.effect("builds a provider on first use only, and keeps it", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const before = yield* registry.list
      expect(before[0]?.health).toEqual(idleHealth)
      const first = yield* registry.get("alpha")
      const second = yield* registry.get("alpha")
      expect(first).toBe(second)
      const after = yield* registry.list
      expect(after[0]?.health?.state).toBe("closed")
    }).pipe(Effect.provide(registryWith([definition("alpha")], configured))))

  it.effect("bad retry and breaker settings are listed as misconfigured with only the real problems", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const expected = [
        "RETRY_MAX: must be an integer from 0 to 20",
        "BREAKER_RECOVERY_TIMEOUT: must be a duration such as 30s, 5m, 1h or a number of seconds"
      ]
      const [alpha] = yield* registry.list
      expect(alpha).toMatchObject({ configured: false, state: "misconfigured", problems: expected, health: null })
      expect((yield* registry.platforms)[0]?.configured).toBe(false)
      expect((yield* failureTagged(registry.get("alpha"), "PlatformNotConfigured")).problems).toEqual(expected)
    }).pipe(Effect.provide(registryWith([definition("alpha")], { ...configured, RETRY_MAX: "lots", BREAKER_RECOVERY_TIMEOUT: "-5" }))))

  it.effect("a platform's own retry setting wins over the shared one", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const alpha = yield* registry.get("alpha")
      expect(Duration.toMillis(alpha.budget)).toBe(20_000 + 10_000)
    }).pipe(Effect.provide(registryWith([definition("alpha")], { ...configured, RETRY_BUDGET: "50s", ALPHA_RETRY_BUDGET: "20s" }))))

  it.effect("settings under which one operation could outlast LEASE_DURATION are refused, naming both variables", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const [alpha] = yield* registry.list
      expect(alpha).toMatchObject({
        state: "misconfigured",
        problems: [
          "ALPHA_RETRY_BUDGET or RETRY_BUDGET: 1m plus the 10s request timeout must be shorter than LEASE_DURATION (1m), or a refresh may outlive its lease"
        ]
      })
    }).pipe(Effect.provide(registryWith([definition("alpha")], configured, { leaseDuration: Duration.minutes(1) }))))

  it.effect("a budget that ends before the lease does is accepted", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const alpha = yield* registry.get("alpha")
      expect(Duration.toMillis(alpha.budget)).toBe(49_000 + 10_000)
    }).pipe(Effect.provide(registryWith([definition("alpha")], { ...configured, RETRY_BUDGET: "49s" }, { leaseDuration: Duration.minutes(1) }))))

  it.effect("a platform without credentials has no breaker health to show", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const [, beta] = yield* registry.list
      expect(beta).toMatchObject({ state: "not_configured", health: null })
    }).pipe(Effect.provide(registryWith([definition("alpha"), definition("beta")], configured))))

  it.effect("a platform is degraded while open, and while half open with every trial slot taken", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const alpha = yield* registry.get("alpha")
      yield* Effect.flip(alpha.refresh(Redacted.make("rt")))
      expect(yield* registry.degraded).toEqual(new Map([["alpha", "circuit_open"]]))
      yield* TestClock.adjust("1 second")
      // Recovered: the next call would be let through.
      expect((yield* registry.degraded).size).toBe(0)
      // A trial in flight takes the only half-open slot: calls fail fast again.
      const trial = yield* Effect.fork(alpha.refresh(Redacted.make("rt")))
      yield* TestClock.adjust("1 millis")
      expect(yield* registry.degraded).toEqual(new Map([["alpha", "circuit_open"]]))
      expect((yield* Effect.flip(alpha.refresh(Redacted.make("rt"))))._tag).toBe("CircuitOpen")
      yield* Fiber.interrupt(trial)
    }).pipe(Effect.provide(registryWith([definition("alpha")], {
      ...configured,
      ALPHA_RETRY_MAX: "0",
      ALPHA_BREAKER_FAILURE_THRESHOLD: "1",
      ALPHA_BREAKER_RECOVERY_TIMEOUT: "1s"
    }, { http: scriptedHttp((_, i) => (i === 0 ? { status: 503 } : { status: 200, json: {}, delay: "5 seconds" })).platformHttp }))))
})
