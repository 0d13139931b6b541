import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Context, Effect, Either, Layer } from "effect"
import { AppConfig, describeConfigError } from "../config/AppConfig.js"
import { PlatformNotConfigured, UnknownPlatform } from "../domain/errors.js"
import { makeOAuthClient } from "../oauth/OAuthClient.js"
import type { PlatformDefinition } from "../platforms/definition.js"
import { type Availability, readSettings } from "../platforms/settings.js"
import type { BreakerHealth } from "../resilience/CircuitBreaker.js"
import type { IntegrationProvider } from "./IntegrationProvider.js"
import { platforms } from "./platforms.js"
import { readResilience } from "./resilienceSettings.js"
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
  /** The circuit breaker, once the provider has been built. */
  readonly health: BreakerHealth | null
}

/**
 * Providers assembled from the catalog: each built on first use (settings read and
 * checked, OAuth client and circuit breaker made) and cached. An unconfigured or
 * misconfigured platform fails alone with PlatformNotConfigured; the others work.
 */
export class ProviderRegistry extends Effect.Service<ProviderRegistry>()("Integrations/ProviderRegistry", {
  dependencies: [PlatformCatalog.Default, NodeHttpClient.layerUndici],
  effect: Effect.gen(function*() {
    const catalog = yield* PlatformCatalog
    const app = yield* AppConfig
    const http = (yield* HttpClient.HttpClient).pipe(HttpClient.withTracerPropagation(false))
    // Captured now so a provider built later, from any fiber, reads the same configuration.
    const configProvider = yield* Effect.configProviderWith(Effect.succeed)

    const build = (definition: PlatformDefinition, availabilityOf: Effect.Effect<Availability>) =>
      Effect.gen(function*() {
        const availability = yield* availabilityOf
        if (availability._tag !== "Configured") {
          return yield* new PlatformNotConfigured({ platform: definition.key, problems: availability.problems })
        }
        const resilience = yield* Effect.either(readResilience(definition.key))
        if (Either.isLeft(resilience)) {
          return yield* new PlatformNotConfigured({ platform: definition.key, problems: describeConfigError(resilience.left) })
        }
        return yield* makeResilientProvider(makeOAuthClient(definition, availability.settings), resilience.right)
      }).pipe(Effect.provideService(HttpClient.HttpClient, http), Effect.withConfigProvider(configProvider))

    interface Entry {
      readonly definition: PlatformDefinition
      readonly availability: Effect.Effect<Availability>
      readonly provider: Effect.Effect<IntegrationProvider, PlatformNotConfigured>
      /** Set once the provider has been built (its breaker then has a health to report). */
      built: IntegrationProvider | null
    }
    const entries = new Map<string, Entry>()
    for (const definition of catalog) {
      // Settings do not change while the process runs: read and checked once, on first use.
      const availability = yield* Effect.cached(readSettings(definition, app).pipe(Effect.withConfigProvider(configProvider)))
      const provider = yield* Effect.cached(build(definition, availability))
      const entry: Entry = {
        definition,
        availability,
        provider: Effect.tap(provider, (built) => Effect.sync(() => { entry.built = built })),
        built: null
      }
      entries.set(definition.key, entry)
    }
    const keys = catalog.map((d) => d.key)

    const get = (key: string): Effect.Effect<IntegrationProvider, UnknownPlatform | PlatformNotConfigured> => {
      const entry = entries.get(key)
      return entry === undefined ? Effect.fail(new UnknownPlatform({ platform: key, known: keys })) : entry.provider
    }

    const definition = (key: string): Effect.Effect<PlatformDefinition, UnknownPlatform> => {
      const entry = entries.get(key)
      return entry === undefined ? Effect.fail(new UnknownPlatform({ platform: key, known: keys })) : Effect.succeed(entry.definition)
    }

    const list: Effect.Effect<ReadonlyArray<PlatformListing>> = Effect.forEach(Array.from(entries.values()), (entry) =>
      Effect.gen(function*() {
        const availability = yield* entry.availability
        const health = entry.built === null ? null : yield* entry.built.health
        return {
          key: entry.definition.key,
          displayName: entry.definition.displayName,
          configured: availability._tag === "Configured",
          problems: availability._tag === "Configured" ? [] : availability.problems,
          state: availability._tag === "Configured" ? "configured" : availability._tag === "NotConfigured" ? "not_configured" : "misconfigured",
          health
        } satisfies PlatformListing
      }))

    const entryList = Array.from(entries.values())

    /** Key, display name and whether configured: no I/O after the first call. */
    const platformsSummary = Effect.forEach(entryList, (entry) =>
      Effect.map(entry.availability, (availability) => ({
        key: entry.definition.key,
        displayName: entry.definition.displayName,
        configured: availability._tag === "Configured"
      })))

    /** Platforms whose circuit breaker is open now, with the reason to show. */
    const degraded: Effect.Effect<ReadonlyMap<string, string>> = Effect.gen(function*() {
      const found = new Map<string, string>()
      for (const entry of entryList) {
        if (entry.built !== null && (yield* entry.built.breakerState) === "open") found.set(entry.definition.key, "circuit_open")
      }
      return found
    })

    return { keys, get, definition, list, platforms: platformsSummary, degraded } as const
  })
}) {}
