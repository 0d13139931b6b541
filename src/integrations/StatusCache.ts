import { Clock, Duration, Effect, Layer, Metric } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { withTags } from "../observability/labels.js"
import { statusCacheRequests } from "../observability/metrics.js"
import { Integrations } from "./Integrations.js"
import type { PlatformStatus } from "./status.js"
import { StatusChanges } from "./StatusChanges.js"

interface Entry<A> {
  readonly value: A
  readonly expiresAt: number
}

/**
 * Statuses cached per user and per (user, platform) for STATUS_CACHE_TTL, dropped on every
 * write (StatusChanges). Not Effect's Cache: a lookup that began before a write must not
 * store what it read, so each user has a generation that a write bumps and a lookup checks
 * before storing. An entry also ends when a connected account's token expires.
 */
export class StatusCache extends Effect.Service<StatusCache>()("Integrations/StatusCache", {
  effect: Effect.gen(function*() {
    const integrations = yield* Integrations
    const changes = yield* StatusChanges
    const { statusCache } = yield* AppConfig
    const ttl = Duration.toMillis(statusCache.ttl)
    const all = new Map<string, Entry<ReadonlyArray<PlatformStatus>>>()
    const one = new Map<string, Entry<PlatformStatus>>()
    const generations = new Map<string, number>()
    let epoch = 0

    const keyOf = (userId: string, platform: string) => `${userId}\u0000${platform}`
    const generation = (userId: string) => `${epoch}:${generations.get(userId) ?? 0}`
    const count = (result: "hit" | "miss") => Metric.increment(withTags(statusCacheRequests, { result }))

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

    const cached = <A, E, R>(
      map: Map<string, Entry<A>>,
      key: string,
      userId: string,
      lookup: Effect.Effect<A, E, R>,
      statusesOf: (a: A) => ReadonlyArray<PlatformStatus>
    ) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const hit = map.get(key)
        if (hit !== undefined && hit.expiresAt > now) {
          yield* count("hit")
          return hit.value
        }
        yield* count("miss")
        const before = generation(userId)
        const value = yield* lookup
        if (generation(userId) === before) {
          map.delete(key)
          map.set(key, { value, expiresAt: expiry(statusesOf(value), now) })
          if (map.size > statusCache.capacity) {
            const oldest = map.keys().next()
            if (oldest.done !== true) map.delete(oldest.value)
          }
        }
        return value
      })

    return {
      statuses: (userId: string) => cached(all, userId, userId, integrations.statuses(userId), (s) => s),
      status: (userId: string, platform: string) =>
        cached(one, keyOf(userId, platform), userId, integrations.status(userId, platform), (s) => [s])
    } as const
  })
}) {}

/** Without a cache (for tests of the uncached path). */
export const StatusCacheDisabled = Layer.effect(
  StatusCache,
  Effect.map(Integrations, (integrations) => StatusCache.make({ statuses: integrations.statuses, status: integrations.status }))
)
