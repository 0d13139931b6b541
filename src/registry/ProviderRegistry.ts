import { Context, Effect, Either, Layer } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { describeConfigError } from "../config/ConfigInvalid.js"
import { PlatformNotConfigured, UnknownPlatform } from "../domain/errors.js"
import { makeOAuthClient } from "../oauth/OAuthClient.js"
import { PlatformHttp } from "../oauth/PlatformHttp.js"
import { readSettings, variablePrefix } from "../oauth/settings.js"
import * as UndiciClient from "../oauth/undiciClient.js"
import type { PlatformDefinition, PlatformSettings } from "../platforms/definition.js"
import * as CircuitBreaker from "../resilience/CircuitBreaker.js"
import * as Policy from "../resilience/policy.js"
import { checkLease, readResilience, type ResilienceSettings } from "../resilience/settings.js"
import type { IntegrationProvider } from "./IntegrationProvider.js"
import { platforms } from "./platforms.js"
import { makeResilientProvider } from "./resilient.js"

/** The platforms the registry offers. */
export class PlatformCatalog extends Context.Tag("Integrations/PlatformCatalog")<
  PlatformCatalog,
  ReadonlyArray<PlatformDefinition>
>() {
  static readonly layer = (definitions: ReadonlyArray<PlatformDefinition>) => Layer.succeed(PlatformCatalog, definitions)
  static readonly Default = PlatformCatalog.layer(platforms)
}

export interface PlatformListing {
  readonly key: string
  readonly displayName: string
  readonly configured: boolean
  /** "not_configured" (no client id) or "misconfigured", with the variables and rules. */
  readonly problems: ReadonlyArray<string>
  readonly state: "configured" | "not_configured" | "misconfigured"
  /** The circuit breaker's health (closed and idle until the provider is built); null unless configured. */
  readonly health: CircuitBreaker.BreakerHealth | null
}

/** A platform's settings and resilience, read and checked together, once: what `list` reports and `get` builds from. */
type Readiness =
  | { readonly _tag: "Configured"; readonly settings: PlatformSettings; readonly resilience: ResilienceSettings }
  | { readonly _tag: "NotConfigured" | "Misconfigured"; readonly problems: ReadonlyArray<string> }

interface Built {
  readonly provider: IntegrationProvider
  readonly breaker: CircuitBreaker.CircuitBreaker
}

/**
 * Providers assembled from the catalog. Each platform's settings (credentials, endpoints,
 * retry and breaker settings) are read and checked once, on first use or first listing, so
 * that start-up can list every problem; its provider is built on first use (its HTTP client
 * made with its request timeout, its OAuth client, its circuit breaker) and cached. An
 * unconfigured or misconfigured platform fails alone with PlatformNotConfigured; the others work.
 */
export class ProviderRegistry extends Effect.Service<ProviderRegistry>()("Integrations/ProviderRegistry", {
  dependencies: [UndiciClient.layer],
  effect: Effect.gen(function*() {
    const catalog = yield* PlatformCatalog
    const app = yield* AppConfig
    const http = yield* PlatformHttp
    // Captured now so that settings read later, from any fiber, come from the same configuration.
    const configProvider = yield* Effect.configProviderWith(Effect.succeed)

    const readiness = (definition: PlatformDefinition): Effect.Effect<Readiness> =>
      Effect.gen(function*() {
        const availability = yield* readSettings(definition, app)
        if (availability._tag === "NotConfigured") return availability
        const prefix = variablePrefix(definition.key)
        const resilience = yield* Effect.either(readResilience(prefix))
        const problems = [
          ...(availability._tag === "Misconfigured" ? availability.problems : []),
          ...(Either.isLeft(resilience) ? describeConfigError(resilience.left) : [])
        ]
        if (availability._tag === "Configured" && Either.isRight(resilience)) {
          const lease = checkLease(prefix, resilience.right, availability.settings.timeout, app.tokens.leaseDuration)
          if (lease === undefined) return { _tag: "Configured", settings: availability.settings, resilience: resilience.right } as const
          problems.push(lease)
        }
        return { _tag: "Misconfigured", problems } as const
      }).pipe(Effect.withConfigProvider(configProvider))

    const build = (definition: PlatformDefinition, readinessOf: Effect.Effect<Readiness>) =>
      Effect.gen(function*() {
        const ready = yield* readinessOf
        if (ready._tag !== "Configured") return yield* new PlatformNotConfigured({ platform: definition.key, problems: ready.problems })
        const policy = yield* Policy.make(definition.key, ready.resilience, ready.settings.timeout)
        const client = makeOAuthClient(definition, ready.settings, http.client(ready.settings.timeout))
        return { provider: makeResilientProvider(client, policy), breaker: policy.breaker } satisfies Built
      })

    interface Entry {
      readonly definition: PlatformDefinition
      readonly readiness: Effect.Effect<Readiness>
      readonly provider: Effect.Effect<IntegrationProvider, PlatformNotConfigured>
      /** Set once the provider has been built (its breaker then has a health to report). */
      built: Built | null
    }
    const entries = new Map<string, Entry>()
    for (const definition of catalog) {
      // Settings do not change while the process runs: read and checked once.
      const ready = yield* Effect.cached(readiness(definition))
      const built = yield* Effect.cached(build(definition, ready))
      const entry: Entry = {
        definition,
        readiness: ready,
        provider: Effect.map(built, (b) => {
          entry.built = b
          return b.provider
        }),
        built: null
      }
      entries.set(definition.key, entry)
    }
    const keys = catalog.map((d) => d.key)
    const entryList = Array.from(entries.values())

    const get = (key: string): Effect.Effect<IntegrationProvider, UnknownPlatform | PlatformNotConfigured> => {
      const entry = entries.get(key)
      return entry === undefined ? Effect.fail(new UnknownPlatform({ platform: key, known: keys })) : entry.provider
    }

    const definition = (key: string): Effect.Effect<PlatformDefinition, UnknownPlatform> => {
      const entry = entries.get(key)
      return entry === undefined ? Effect.fail(new UnknownPlatform({ platform: key, known: keys })) : Effect.succeed(entry.definition)
    }

    /** Every platform with its state and problems (bad retry and breaker settings included) and its breaker's health. */
    const list: Effect.Effect<ReadonlyArray<PlatformListing>> = Effect.forEach(entryList, (entry) =>
      Effect.gen(function*() {
        const ready = yield* entry.readiness
        const configured = ready._tag === "Configured"
        return {
          key: entry.definition.key,
          displayName: entry.definition.displayName,
          configured,
          problems: configured ? [] : ready.problems,
          state: configured ? "configured" : ready._tag === "NotConfigured" ? "not_configured" : "misconfigured",
          health: entry.built !== null ? yield* entry.built.breaker.health : configured ? CircuitBreaker.idleHealth : null
        } satisfies PlatformListing
      }))

    /** Key, display name and whether configured: no I/O after the first call. */
    const platformsSummary = Effect.forEach(entryList, (entry) =>
      Effect.map(entry.readiness, (ready) => ({
        key: entry.definition.key,
        displayName: entry.definition.displayName,
        configured: ready._tag === "Configured"
      })))

    /** Platforms whose calls fail fast now (breaker open, or half open with every trial slot taken), with the reason to show. */
    const degraded: Effect.Effect<ReadonlyMap<string, string>> = Effect.gen(function*() {
      const found = new Map<string, string>()
      for (const entry of entryList) {
        if (entry.built !== null && (yield* entry.built.breaker.failsFast)) found.set(entry.definition.key, "circuit_open")
      }
      return found
    })

    return { keys, get, definition, list, platforms: platformsSummary, degraded } as const
  })
}) {}

/**
 * One warning per problem of each misconfigured platform, at start: a platform is otherwise
 * only built on first use, so a bad setting would surface with the first user's request. The
 * platform stays listed as misconfigured and the others work.
 */
export const warnMisconfiguredPlatforms = Effect.gen(function*() {
  const registry = yield* ProviderRegistry
  for (const platform of yield* registry.list) {
    if (platform.state !== "misconfigured") continue
    for (const problem of platform.problems) {
      yield* Effect.logWarning(`platform ${platform.key} is misconfigured and unavailable until fixed: ${problem}`)
    }
  }
})
