import { Clock, Duration, Effect, Metric } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { Integrations } from "../integrations/Integrations.js"
import type { PlatformStatus } from "../integrations/status.js"
import { StatusChanges } from "../integrations/StatusChanges.js"
import { withTags } from "../observability/labels.js"
import { statusCacheRequests } from "../observability/metrics.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { connectionStatusJson } from "./json.js"

interface Entry {
  readonly statuses: ReadonlyArray<PlatformStatus>
  readonly expiresAt: number
  /** The serialized answer, per set of degraded platforms it was made for. */
  readonly bodies: Map<string, string>
}

const hits = withTags(statusCacheRequests, { result: "hit" })
const misses = withTags(statusCacheRequests, { result: "miss" })

/**
 * Statuses cached per user and per (user, platform) for STATUS_CACHE_TTL, dropped on every
 * write (StatusChanges, here and in every process on the database), with the JSON answer kept
 * beside them so a hit costs no recomputation. Not Effect's Cache: a lookup that began
 * before a write must not store what it read, so each user has a generation that a write
 * bumps and a lookup checks before storing. An entry also ends when a connected account's
 * token expires. Whether a platform is degraded (its breaker open) is read on every request.
 */
export class StatusCache extends Effect.Service<StatusCache>()("Integrations/StatusCache", {
  effect: Effect.gen(function*() {
    const integrations = yield* Integrations
    const registry = yield* ProviderRegistry
    const changes = yield* StatusChanges
    const { statusCache } = yield* AppConfig
    const ttl = Duration.toMillis(statusCache.ttl)
    const all = new Map<string, Entry>()
    const one = new Map<string, Entry>()
    const generations = new Map<string, number>()
    let epoch = 0

    const keyOf = (userId: string, platform: string) => `${userId}\u0000${platform}`
    const generation = (userId: string) => `${epoch}:${generations.get(userId) ?? 0}`

    yield* changes.subscribe((change) =>
      Effect.sync(() => {
        if (change === "all") {
          epoch++
          all.clear()
          one.clear()
          generations.clear()
          return
        }
        generations.set(change.userId, (generations.get(change.userId) ?? 0) + 1)
        all.delete(change.userId)
        one.delete(keyOf(change.userId, change.platform))
      })
    )

    const expiry = (statuses: ReadonlyArray<PlatformStatus>, now: number) =>
      statuses.reduce((soonest, s) =>
        s.accounts.reduce((t, a) =>
          a.connected && a.expiresAt !== null && a.expiresAt.getTime() > now ? Math.min(t, a.expiresAt.getTime()) : t, soonest), now + ttl)

    const entry = <E>(map: Map<string, Entry>, key: string, userId: string, lookup: Effect.Effect<ReadonlyArray<PlatformStatus>, E>) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const hit = map.get(key)
        if (hit !== undefined && hit.expiresAt > now) {
          yield* Metric.increment(hits)
          return hit
        }
        yield* Metric.increment(misses)
        const before = generation(userId)
        const statuses = yield* lookup
        const fresh: Entry = { statuses, expiresAt: expiry(statuses, now), bodies: new Map() }
        if (generation(userId) === before) {
          map.delete(key)
          map.set(key, fresh)
          if (map.size > statusCache.capacity) {
            const oldest = map.keys().next()
            if (oldest.done !== true) map.delete(oldest.value)
          }
        }
        return fresh
      })

    /** The entry's statuses with today's degraded flags, and the body made from them. */
    const answer = (cached: Entry, body: (statuses: ReadonlyArray<PlatformStatus>) => unknown) =>
      Effect.map(registry.degraded, (degraded) => {
        const signature = [...degraded.entries()].map(([k, v]) => `${k}=${v}`).join(",")
        const statuses = cached.statuses.map((s) => {
          const reason = degraded.get(s.platform) ?? null
          return s.degradedReason === reason ? s : { ...s, degraded: reason !== null, degradedReason: reason }
        })
        let text = cached.bodies.get(signature)
        if (text === undefined) {
          text = JSON.stringify(body(statuses))
          cached.bodies.set(signature, text)
        }
        return { statuses, body: text }
      })

    const statuses = (userId: string) =>
      Effect.flatMap(entry(all, userId, userId, integrations.statuses(userId)), (e) =>
        answer(e, (list) => ({ user_id: userId, connections: list.map(connectionStatusJson) })))

    const status = (userId: string, platform: string) =>
      Effect.flatMap(entry(one, keyOf(userId, platform), userId, Effect.map(integrations.status(userId, platform), (s) => [s])), (e) =>
        answer(e, (list) => (list[0] === undefined ? null : connectionStatusJson(list[0]))))

    return {
      /** Every platform's status for a user, and the JSON answer of GET .../connections. */
      statuses,
      /** One platform's status, and the JSON answer of GET .../connections/{platform}. */
      status
    } as const
  })
}) {}

