import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Layer, Metric, Schema, TestClock } from "effect"
import { DatabaseUnavailable } from "../../src/domain/errors.js"
import { Connections, ConnectionStatus } from "../../src/http/answers.js"
import { StatusCache } from "../../src/http/StatusCache.js"
import { Statuses } from "../../src/status/Statuses.js"
import { type ChangeListener, StatusChanges } from "../../src/status/StatusChanges.js"
import type { PlatformStatus } from "../../src/status/status.js"
import { withTags } from "../../src/observability/labels.js"
import { statusCacheRequests } from "../../src/observability/metrics.js"
import { ProviderRegistry } from "../../src/registry/ProviderRegistry.js"
import { testConfig } from "../support/config.js"

const TTL = Duration.minutes(5)

const platformStatus = (platform: string, connected: boolean, expiresAt: Date | null = null): PlatformStatus => ({
  platform,
  displayName: platform,
  configured: true,
  connected,
  status: connected ? "connected" : "not_connected",
  accounts: connected
    ? [{
      accountId: "",
      connected: true,
      status: "active",
      expiresAt,
      scope: null,
      connectedAt: new Date(0),
      lastRefreshedAt: null,
      lastError: null,
      providerData: {}
    }]
    : [],
  details: {},
  error: null,
  degraded: false,
  degradedReason: null
})

/**
 * What the stored data says (mutable by the test), how many times it was read, an optional
 * gate every read waits on after it has begun, whether reads fail, the platforms degraded,
 * and who listens to changes (so a test can tell them the LISTEN was lost).
 */
interface Storage {
  readonly connected: Set<string>
  expiresAt: Date | null
  reads: number
  gate: { readonly started: Deferred.Deferred<void>; readonly release: Deferred.Deferred<void> } | null
  failing: boolean
  readonly degraded: Map<string, string>
  readonly listeners: Array<ChangeListener>
}

const read = (storage: Storage, userId: string) =>
  Effect.gen(function*() {
    storage.reads++
    const answer = [platformStatus("gsc", storage.connected.has(userId), storage.expiresAt)]
    const gate = storage.gate
    if (gate !== null) {
      yield* Deferred.succeed(gate.started, undefined)
      yield* Deferred.await(gate.release)
    }
    if (storage.failing) return yield* new DatabaseUnavailable({ message: "the database is not answering" })
    return answer
  })

/** The cache over mock integrations, a registry with nothing degraded, and in-process change notifications. */
const cacheOver = (storage: Storage, capacity = 100) =>
  StatusCache.DefaultWithoutDependencies.pipe(Layer.provideMerge(
    Layer.mergeAll(
      Layer.mock(Statuses, {
        _tag: "Integrations/Statuses",
        statuses: (userId) => read(storage, userId),
        status: (userId) => Effect.map(read(storage, userId), (all) => all[0] ?? platformStatus("gsc", false))
      }),
      Layer.mock(ProviderRegistry, { _tag: "Integrations/ProviderRegistry", keys: ["gsc"], degraded: Effect.sync(() => new Map(storage.degraded)) }),
      Layer.sync(StatusChanges, () => {
        const publish = (userId: string, platform: string) =>
          Effect.forEach(storage.listeners, (l) => l({ userId, platform }), { discard: true })
        return {
          subscribe: (listener: ChangeListener) => Effect.sync(() => void storage.listeners.push(listener)),
          publish,
          publishMany: (changes: Iterable<{ readonly userId: string; readonly platform: string }>) =>
            Effect.forEach(changes, (c) => publish(c.userId, c.platform), { discard: true })
        }
      }),
      testConfig({ statusCache: { ttl: TTL, capacity } })
    )
  ))

const storage = (): Storage => ({
  connected: new Set(),
  expiresAt: null,
  reads: 0,
  gate: null,
  failing: false,
  degraded: new Map(),
  listeners: []
})

/** Every read from now on waits until the test lets it go. */
const gateReads = (data: Storage) =>
  Effect.map(Effect.all([Deferred.make<void>(), Deferred.make<void>()]), ([started, release]) => {
    const gate = { started, release }
    data.gate = gate
    return gate
  })

const listenLost = (data: Storage) => Effect.forEach(data.listeners, (l) => l("all"), { discard: true })

const connectedNow = (userId: string) =>
  Effect.flatMap(StatusCache, (cache) => Effect.map(cache.statuses(userId), ({ value }) => value[0]?.connected))

const count = (result: "hit" | "miss") => Effect.map(Metric.value(withTags(statusCacheRequests, { result })), (s) => s.count)

describe("StatusCache", () => {
  it.effect("serves an entry for STATUS_CACHE_TTL, then reads the data again", () => {
    const data = storage()
    return Effect.gen(function*() {
      const cache = yield* StatusCache
      yield* cache.statuses("u1")
      yield* TestClock.adjust(Duration.subtract(TTL, Duration.millis(1)))
      yield* cache.statuses("u1")
      expect(data.reads).toBe(1)
      yield* TestClock.adjust(Duration.millis(1))
      yield* cache.statuses("u1")
      expect(data.reads).toBe(2)
    }).pipe(Effect.provide(cacheOver(data)))
  })

  it.effect("an entry ends when a connected account's token expires, before the TTL", () => {
    const data = storage()
    data.connected.add("u1")
    data.expiresAt = new Date(60_000)
    return Effect.gen(function*() {
      const cache = yield* StatusCache
      yield* cache.statuses("u1")
      yield* TestClock.adjust("59 seconds")
      yield* cache.statuses("u1")
      expect(data.reads).toBe(1)
      yield* TestClock.adjust("1 second")
      yield* cache.statuses("u1")
      expect(data.reads).toBe(2)
    }).pipe(Effect.provide(cacheOver(data)))
  })

  it.effect("a change drops the user's entries, both the list and the one platform", () => {
    const data = storage()
    return Effect.gen(function*() {
      const cache = yield* StatusCache
      const changes = yield* StatusChanges
      expect(yield* connectedNow("u1")).toBe(false)
      expect((yield* cache.status("u1", "gsc")).value.connected).toBe(false)
      data.connected.add("u1")
      yield* changes.publish("u1", "gsc")
      expect(yield* connectedNow("u1")).toBe(true)
      expect((yield* cache.status("u1", "gsc")).value.connected).toBe(true)
    }).pipe(Effect.provide(cacheOver(data)))
  })

  it.effect("a write during a lookup: the lookup does not store what it read before the write", () => {
    const data = storage()
    return Effect.gen(function*() {
      const cache = yield* StatusCache
      const changes = yield* StatusChanges
      const gate = { started: yield* Deferred.make<void>(), release: yield* Deferred.make<void>() }
      data.gate = gate
      const slow = yield* Effect.fork(cache.statuses("u1"))
      yield* Deferred.await(gate.started)
      data.gate = null
      data.connected.add("u1")
      yield* changes.publish("u1", "gsc")
      yield* Deferred.succeed(gate.release, undefined)
      // The slow lookup answers its own request with what it read...
      expect((yield* Fiber.join(slow)).value[0]?.connected).toBe(false)
      // ...but the next request reads again and sees the write.
      expect(yield* connectedNow("u1")).toBe(true)
      expect(data.reads).toBe(2)
    }).pipe(Effect.provide(cacheOver(data)))
  })

  it.effect("counts a miss for a read and a hit for an answer from the cache", () => {
    const data = storage()
    return Effect.gen(function*() {
      const cache = yield* StatusCache
      const [hits, misses] = [yield* count("hit"), yield* count("miss")]
      yield* cache.statuses("metrics-user")
      yield* cache.statuses("metrics-user")
      yield* cache.statuses("metrics-user")
      yield* cache.status("metrics-user", "gsc")
      expect((yield* count("miss")) - misses).toBe(2)
      expect((yield* count("hit")) - hits).toBe(2)
    }).pipe(Effect.provide(cacheOver(data)))
  })

  it.effect("holds at most STATUS_CACHE_CAPACITY entries, evicting the oldest", () => {
    const data = storage()
    return Effect.gen(function*() {
      const cache = yield* StatusCache
      for (const user of ["u1", "u2", "u3"]) yield* cache.statuses(user)
      yield* cache.statuses("u4")
      expect(data.reads).toBe(4)
      for (const user of ["u2", "u3", "u4"]) yield* cache.statuses(user)
      expect(data.reads).toBe(4)
      yield* cache.statuses("u1")
      expect(data.reads).toBe(5)
    }).pipe(Effect.provide(cacheOver(data, 3)))
  })
  it.effect("a failed read is not kept: the next request reads again", () => {
    const data = storage()
    data.failing = true
    return Effect.gen(function*() {
      const cache = yield* StatusCache
      expect(Exit.isFailure(yield* Effect.exit(cache.statuses("u1")))).toBe(true)
      data.failing = false
      data.connected.add("u1")
      // Same instant (the TestClock has not moved): a failure kept for no time would still be found.
      expect(yield* connectedNow("u1")).toBe(true)
      expect(data.reads).toBe(2)
    }).pipe(Effect.provide(cacheOver(data)))
  })

  it.effect("a lost LISTEN drops every entry, and a read running across it is not kept", () => {
    const data = storage()
    return Effect.gen(function*() {
      const cache = yield* StatusCache
      yield* cache.statuses("u1")
      yield* cache.status("u2", "gsc")
      const gate = yield* gateReads(data)
      const slow = yield* Effect.fork(cache.statuses("u3"))
      yield* Deferred.await(gate.started)
      data.gate = null
      yield* listenLost(data)
      yield* Deferred.succeed(gate.release, undefined)
      yield* Fiber.join(slow)
      expect(data.reads).toBe(3)
      yield* cache.statuses("u1")
      yield* cache.status("u2", "gsc")
      yield* cache.statuses("u3")
      expect(data.reads).toBe(6)
    }).pipe(Effect.provide(cacheOver(data)))
  })

  it.effect("a write to one platform keeps the user's other platforms", () => {
    const data = storage()
    return Effect.gen(function*() {
      const cache = yield* StatusCache
      const changes = yield* StatusChanges
      yield* cache.status("u1", "gsc")
      yield* cache.status("u1", "bing")
      yield* changes.publish("u1", "gsc")
      yield* cache.status("u1", "bing")
      expect(data.reads).toBe(2)
      yield* cache.status("u1", "gsc")
      expect(data.reads).toBe(3)
    }).pipe(Effect.provide(cacheOver(data)))
  })

  it.effect("answers carry the bytes of the contract's JSON, for the platforms degraded at the time", () => {
    const data = storage()
    data.connected.add("u1")
    const text = (body: Uint8Array) => Buffer.from(body).toString("utf8")
    return Effect.gen(function*() {
      const cache = yield* StatusCache
      const plain = yield* cache.statuses("u1")
      expect(text(plain.body)).toBe(JSON.stringify(Schema.encodeSync(Connections)({ userId: "u1", connections: plain.value })))
      expect(plain.value[0]?.degraded).toBe(false)
      data.degraded.set("gsc", "circuit_open")
      const degraded = yield* cache.status("u1", "gsc")
      expect(degraded.value).toMatchObject({ degraded: true, degradedReason: "circuit_open" })
      expect(text(degraded.body)).toBe(JSON.stringify(Schema.encodeSync(ConnectionStatus)(degraded.value)))
      expect((yield* cache.statuses("u1")).value[0]?.degradedReason).toBe("circuit_open")
      data.degraded.clear()
      expect(text((yield* cache.statuses("u1")).body)).toBe(text(plain.body))
      expect(data.reads).toBe(2)
    }).pipe(Effect.provide(cacheOver(data)))
  })
})
