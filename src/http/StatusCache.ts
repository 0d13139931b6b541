import { Duration, Effect, Metric } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import type { PlatformStatus } from "../status/status.js"
import { StatusChanges, StatusChangesLive } from "../status/StatusChanges.js"
import { Statuses } from "../status/Statuses.js"
import { withTags } from "../observability/labels.js"
import { statusCacheRequests } from "../observability/metrics.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { Connections, ConnectionStatus } from "./answers.js"
import { wireEncoder } from "./wireEncoder.js"

/** A status as it is to be answered now, and the bytes of the contract's JSON answer for it. */
export interface Answer<A> {
  readonly value: A
  readonly body: Uint8Array
}

interface Entry<A> {
  /** The answer while no platform is degraded. */
  readonly plain: Answer<A>
  /** The answers for sets of degraded platforms, each made when first asked for. */
  readonly degraded: Map<string, Answer<A>>
  /** When the entry ends (exclusive): STATUS_CACHE_TTL after its read began, or when a connected token expires. */
  readonly until: number
}

/** What a cache reads and how it answers. */
interface Kind<A, E> {
  readonly read: (userId: string, platform: string) => Effect.Effect<A, E>
  readonly statuses: (value: A) => ReadonlyArray<PlatformStatus>
  /** The value with each platform's degraded reason (null: not degraded). */
  readonly degrade: (value: A, reasonOf: (platform: string) => string | null) => A
  /** The contract's encoding of the answer (its schema's Encoded form). */
  readonly encode: (userId: string, value: A) => unknown
}

const hits = withTags(statusCacheRequests, { result: "hit" })
const misses = withTags(statusCacheRequests, { result: "miss" })

const withReason = (status: PlatformStatus, reason: string | null): PlatformStatus =>
  status.degradedReason === reason ? status : { ...status, degraded: reason !== null, degradedReason: reason }

const notDegraded = () => null

const answer = <A>(value: A, encoded: unknown): Answer<A> => ({ value, body: Buffer.from(JSON.stringify(encoded), "utf8") })

const encodeConnections = wireEncoder(Connections)
const encodeStatus = wireEncoder(ConnectionStatus)

/**
 * Statuses cached per user and per (user, platform), at most STATUS_CACHE_CAPACITY entries of
 * each (the oldest read leaves first), for STATUS_CACHE_TTL or until a connected account's
 * token expires, each with the bytes of its JSON answer, encoded once per read with the
 * contract's own schema. Every write (StatusChanges: this process's, and through
 * LISTEN/NOTIFY every other process's) drops the entries it touches; a lost LISTEN drops them
 * all. A failed read is not kept. Whether a platform is degraded (its breaker open) is read on
 * every request, and the answer made for that is kept with the entry.
 *
 * A read that began before a write must not be kept as the state after it: each user has a
 * write generation, which a write moves on and a read compares before it stores what it read.
 * Generations count up and never repeat; one is kept per user written to, until a lost LISTEN
 * forgets them all (and starts above them).
 *
 * Not Effect's Cache: built on Cache.makeWith (a generation in the key, failures given no time
 * to live and dropped), this service took 59 µs of CPU per miss and 6.3 µs per hit (a Deferred,
 * Data.structs and a context switch per lookup), against 30 µs and 3.6 µs with these Maps
 * (measured through the service over an in-memory read, Node 20; the Maps of before, which
 * rebuilt each answer's statuses per request: 30 µs and 9.8 µs). bench:status spends about
 * 580 µs and 140 µs of the machine's CPU per miss and per hit (two cores over the rates in
 * bench/RESULTS.md): Cache would have cost 5 % of the misses and 2 % of the hits.
 */
export class StatusCache extends Effect.Service<StatusCache>()("Integrations/StatusCache", {
  dependencies: [Statuses.Default, ProviderRegistry.Default, StatusChangesLive],
  effect: Effect.gen(function*() {
    const reads = yield* Statuses
    const registry = yield* ProviderRegistry
    const changes = yield* StatusChanges
    const { statusCache } = yield* AppConfig
    const clock = yield* Effect.clock
    const ttl = Duration.toMillis(statusCache.ttl)

    const generations = new Map<string, number>()
    let latest = 0
    let floor = 0
    const generationOf = (userId: string) => generations.get(userId) ?? floor

    const expiry = (statuses: ReadonlyArray<PlatformStatus>, started: number) =>
      statuses.reduce((soonest, s) =>
        s.accounts.reduce((t, a) =>
          a.connected && a.expiresAt !== null && a.expiresAt.getTime() > started ? Math.min(t, a.expiresAt.getTime()) : t, soonest), started + ttl)

    const makeCache = <A, E>(kind: Kind<A, E>) => {
      const entries = new Map<string, Entry<A>>()

      const store = (key: string, entry: Entry<A>) => {
        entries.delete(key)
        entries.set(key, entry)
        if (entries.size > statusCache.capacity) {
          const oldest = entries.keys().next()
          if (oldest.done !== true) entries.delete(oldest.value)
        }
      }

      const read = (key: string, userId: string, platform: string, started: number) => {
        const generation = generationOf(userId)
        return Metric.increment(misses).pipe(
          Effect.zipRight(kind.read(userId, platform)),
          Effect.map((found): Entry<A> => {
            const value = kind.degrade(found, notDegraded)
            const entry = { plain: answer(value, kind.encode(userId, value)), degraded: new Map(), until: expiry(kind.statuses(value), started) }
            if (generationOf(userId) === generation) store(key, entry)
            return entry
          })
        )
      }

      /** The entry's answer for the platforms degraded now. */
      const current = (userId: string, entry: Entry<A>) =>
        Effect.map(registry.degraded, (degraded) => {
          if (degraded.size === 0) return entry.plain
          const signature = [...degraded].map(([platform, reason]) => `${platform}=${reason}`).join(",")
          let found = entry.degraded.get(signature)
          if (found === undefined) {
            const value = kind.degrade(entry.plain.value, (platform) => degraded.get(platform) ?? null)
            found = answer(value, kind.encode(userId, value))
            entry.degraded.set(signature, found)
          }
          return found
        })

      const get = (key: string, userId: string, platform: string) =>
        Effect.suspend(() => {
          const now = clock.unsafeCurrentTimeMillis()
          const hit = entries.get(key)
          const entry = hit !== undefined && hit.until > now
            ? Effect.as(Metric.increment(hits), hit)
            : read(key, userId, platform, now)
          return Effect.flatMap(entry, (found) => current(userId, found))
        })

      return { entries, get } as const
    }

    const all = makeCache({
      read: (userId) => reads.statuses(userId),
      statuses: (list) => list,
      degrade: (list, reasonOf) => list.map((s) => withReason(s, reasonOf(s.platform))),
      encode: (userId, connections) => encodeConnections({ userId, connections })
    })
    const one = makeCache({
      read: (userId, platform) => reads.status(userId, platform),
      statuses: (status) => [status],
      degrade: (status, reasonOf) => withReason(status, reasonOf(status.platform)),
      encode: (_, status) => encodeStatus(status)
    })
    const pairKey = (userId: string, platform: string) => `${userId}\u0000${platform}`

    yield* changes.subscribe((change) =>
      Effect.sync(() => {
        if (change === "all") {
          generations.clear()
          floor = ++latest
          all.entries.clear()
          one.entries.clear()
          return
        }
        generations.set(change.userId, ++latest)
        all.entries.delete(change.userId)
        one.entries.delete(pairKey(change.userId, change.platform))
      })
    )

    return {
      /** Every platform's status for a user, and the bytes of GET .../connections's answer. */
      statuses: (userId: string) => all.get(userId, userId, ""),
      /** One platform's status, and the bytes of GET .../connections/{platform}'s answer. */
      status: (userId: string, platform: string) => one.get(pairKey(userId, platform), userId, platform)
    } as const
  })
}) {}
