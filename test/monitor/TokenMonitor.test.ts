import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Fiber, HashMap, Layer, Logger, Metric, Option, Redacted, Ref, Scope, TestClock } from "effect"
import { MonitorPassRepository } from "../../src/db/MonitorPassRepository.js"
import { ConnectionRepository } from "../../src/db/ConnectionRepository.js"
import type { Claimed } from "../../src/db/connectionRows.js"
import type { Outcome } from "../../src/db/connectionWrites.js"
import type { OutcomeEvent } from "../../src/db/EventRepository.js"
import type { Connection } from "../../src/domain/Connection.js"
import {
  CircuitOpen,
  DatabaseUnavailable,
  InvalidGrant,
  type ProviderError,
  ProviderUnavailable,
  RateLimited,
  UnknownPlatform
} from "../../src/domain/errors.js"
import { Refresher } from "../../src/integrations/Refresher.js"
import { StatusChanges } from "../../src/status/StatusChanges.js"
import { MonitorLive, TokenMonitor } from "../../src/monitor/TokenMonitor.js"
import { withTags } from "../../src/observability/labels.js"
import { monitorConnections, refreshes } from "../../src/observability/metrics.js"
import { bing } from "../../src/platforms/bing.js"
import type { PlatformDefinition, TokenGrant } from "../../src/platforms/definition.js"
import { gsc } from "../../src/platforms/gsc.js"
import { pkceByDefault } from "../../src/oauth/settings.js"
import type { IntegrationProvider } from "../../src/registry/IntegrationProvider.js"
import { ProviderRegistry } from "../../src/registry/ProviderRegistry.js"
import { idleHealth } from "../../src/resilience/CircuitBreaker.js"
import { testConfig, testSettings } from "../support/config.js"
import { connectionRow } from "../support/connections.js"

const row = (id: string, overrides: Partial<Connection> = {}) =>
  connectionRow({ id, userId: `user-${id}`, scope: null, expiresAt: new Date(60_000), ...overrides })

const settings = (monitor: Partial<ReturnType<typeof testSettings>["monitor"]> = {}, leaseDuration = Duration.minutes(2)) =>
  testConfig({
    monitor: { ...testSettings().monitor, enabled: true, interval: Duration.minutes(1), ...monitor },
    tokens: { ...testSettings().tokens, leaseDuration }
  })

/** Which platform call answers how, by connection id (the fake refresh token is `rt-<id>`). */
type Answer = (id: string) => Effect.Effect<TokenGrant, ProviderError>

const grant: TokenGrant = {
  accessToken: Redacted.make("new-access"),
  refreshToken: Option.none(),
  expiresIn: Option.some(3600),
  scope: Option.none(),
  tokenType: Option.some("Bearer"),
  fields: {}
}

const fakeProvider = (definition: PlatformDefinition, answer: Answer, budget: Duration.Duration): IntegrationProvider => ({
  key: definition.key,
  displayName: definition.displayName,
  definition,
  settings: {
    clientId: "client",
    clientSecret: Option.none(),
    redirectUri: "https://app.example.com/oauth/callback",
    urls: definition.endpoints,
    overridden: new Set(),
    scopes: definition.scopes,
    tokenBody: definition.tokenBody,
    pkce: pkceByDefault(definition.pkce),
    timeout: Duration.seconds(10)
  },
  budget,
  authorizationUrl: () => Effect.succeed(""),
  exchangeCode: () => Effect.succeed(grant),
  refresh: (token) => answer(Redacted.value(token).slice(3)),
  revoke: () => Effect.void,
  account: () => Effect.succeed({ accountId: "", providerData: {} }),
  validate: () => Effect.succeed("valid"),
  health: Effect.succeed(idleHealth),
  breakerState: Effect.succeed("closed")
})

interface Write {
  readonly id: string
  readonly write: "storeRefresh" | "recordRefreshFailure" | "markDead" | "markValidated"
  readonly events: ReadonlyArray<OutcomeEvent>
  readonly nextAttemptAt?: Date
}

/**
 * The monitor and the real Refresher over an in-memory table standing in for the
 * repository: a claim takes unleased due rows up to the limit and leases them; a stored
 * outcome settles the row and frees it; releaseLeases frees what it names.
 */
interface World {
  readonly rows: Map<string, { readonly row: Connection; owner: string | null; due: boolean }>
  readonly claims: Ref.Ref<number>
  readonly writes: Ref.Ref<ReadonlyArray<Write>>
  readonly released: Ref.Ref<ReadonlyArray<ReadonlyArray<string>>>
  readonly published: Ref.Ref<number>
  readonly platformCalls: Ref.Ref<number>
  /** What each tick recorded for `status`. */
  readonly passes: Array<Readonly<Record<string, unknown>>>
}

const makeWorld = (rows: ReadonlyArray<Connection> = []) =>
  Effect.gen(function*() {
    return {
      rows: new Map(rows.map((r) => [r.id, { row: r, owner: null, due: true }])),
      claims: yield* Ref.make(0),
      writes: yield* Ref.make<ReadonlyArray<Write>>([]),
      released: yield* Ref.make<ReadonlyArray<ReadonlyArray<string>>>([]),
      published: yield* Ref.make(0),
      passes: [],
      platformCalls: yield* Ref.make(0)
    } satisfies World
  })

const monitorWith = (
  world: World,
  options: {
    readonly answer?: Answer
    readonly budget?: Duration.Duration
    /** Replaces the claim's answer on the nth claim. */
    readonly claimFails?: (n: number) => Effect.Effect<never, DatabaseUnavailable> | undefined
    readonly expiring?: ReadonlyArray<Connection>
    /** How long storing refresh results takes. */
    readonly storeTakes?: Duration.Duration
  } = {},
  config = settings()
) => {
  const answer: Answer = (id) => Effect.zipRight(Ref.update(world.platformCalls, (n) => n + 1), options.answer?.(id) ?? Effect.succeed(grant))
  const budget = options.budget ?? Duration.seconds(10)
  const providers = new Map([gsc, bing].map((d) => [d.key, fakeProvider(d, answer, budget)]))
  const settle = (id: string, write: Write["write"], outcome: Outcome, nextAttemptAt?: Date) =>
    Effect.gen(function*() {
      const entry = world.rows.get(id)
      if (entry === undefined || entry.owner !== outcome.owner) return Option.none()
      entry.owner = null
      entry.due = false
      yield* Ref.update(world.writes, (all) => [...all, { id, write, events: outcome.events, ...(nextAttemptAt === undefined ? {} : { nextAttemptAt }) }])
      return Option.some(entry.row)
    })
  const claim = (owner: string, leaseUntil: Date, limit: number) =>
    Effect.gen(function*() {
      const n = yield* Ref.updateAndGet(world.claims, (c) => c + 1)
      const failure = options.claimFails?.(n)
      if (failure !== undefined) return yield* failure
      const taken: Array<Claimed> = []
      for (const entry of world.rows.values()) {
        if (taken.length === limit) break
        if (!entry.due || entry.owner !== null) continue
        entry.owner = owner
        taken.push({ connection: { ...entry.row, leaseUntil }, sealed: { keyId: "k1", accessToken: null, refreshToken: null } })
      }
      return taken
    })

  const repository = Layer.mock(ConnectionRepository, {
    _tag: "Integrations/ConnectionRepository",
    claimDueRefreshes: (owner, _now, _horizon, leaseUntil, limit) => claim(owner, leaseUntil, limit),
    claimDueValidations: () => Effect.succeed([]),
    claimExpiryWarnings: () => Effect.succeed(options.expiring ?? []),
    openTokens: (connection) =>
      Effect.succeed({
        accessToken: Redacted.make(`at-${connection.id}`),
        refreshToken: connection.hasRefreshToken ? Option.some(Redacted.make(`rt-${connection.id}`)) : Option.none()
      }),
    openRefreshToken: (connection) => Either.right(connection.hasRefreshToken ? Option.some(Redacted.make(`rt-${connection.id}`)) : Option.none()),
    storeRefresh: (connection, _tokens, outcome) => settle(connection.id, "storeRefresh", outcome),
    storeRefreshes: (batch) =>
      Effect.map(
        Effect.zipRight(Effect.sleep(options.storeTakes ?? Duration.zero), Effect.forEach(batch, ({ connection, outcome }) => Effect.map(settle(connection.id, "storeRefresh", outcome), (row) => [connection.id, row] as const))),
        (stored) => new Map(stored.flatMap(([id, row]) => Option.isSome(row) ? [[id, row.value] as const] : []))
      ),
    recordRefreshFailure: (id, failure, outcome) => settle(id, "recordRefreshFailure", outcome, failure.nextAttemptAt),
    markDead: (id, _status, _reason, outcome) => settle(id, "markDead", outcome),
    markValidated: (id, outcome) => settle(id, "markValidated", outcome),
    releaseLeases: (ids, owner) =>
      Effect.gen(function*() {
        for (const id of ids) {
          const entry = world.rows.get(id)
          if (entry?.owner === owner) entry.owner = null
        }
        yield* Ref.update(world.released, (all) => [...all, ids])
      }),
    findById: (id) => Effect.succeed(Option.fromNullable(world.rows.get(id)?.row))
  })
  const registry = Layer.mock(ProviderRegistry, {
    _tag: "Integrations/ProviderRegistry",
    keys: [...providers.keys()],
    get: (key) => {
      const provider = providers.get(key)
      return provider === undefined ? Effect.fail(new UnknownPlatform({ platform: key, known: [...providers.keys()] })) : Effect.succeed(provider)
    }
  })
  const changes = Layer.succeed(StatusChanges, {
    publish: () => Ref.update(world.published, (n) => n + 1),
    publishMany: (changes) => Ref.update(world.published, (n) => n + Array.from(changes).length),
    subscribe: () => Effect.void
  })
  // The pass's record for `status` is kept in memory here (its storage is tested on PostgreSQL).
  const passes = Layer.mock(MonitorPassRepository, {
    _tag: "Integrations/MonitorPassRepository",
    record: (_at, _ms, report) => Effect.sync(() => void world.passes.push(report))
  })
  return TokenMonitor.DefaultWithoutDependencies.pipe(
    Layer.provide(Refresher.DefaultWithoutDependencies),
    Layer.provide(Layer.mergeAll(repository, registry, changes, config, passes))
  )
}

const tickOf = (world: World, options?: Parameters<typeof monitorWith>[1], config?: Parameters<typeof monitorWith>[2]) =>
  Effect.flatMap(TokenMonitor, (m) => m.tick).pipe(Effect.provide(monitorWith(world, options, config)))

const counter = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (state) => state.count)

describe("token monitor (mock layers, TestClock)", () => {
  it.effect("ticks at once, then every MONITOR_INTERVAL", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      yield* Effect.gen(function*() {
        const monitor = yield* TokenMonitor
        const fiber = yield* Effect.fork(monitor.run)
        yield* TestClock.adjust(0)
        expect(yield* Ref.get(world.claims)).toBe(1)
        yield* TestClock.adjust("59 seconds")
        expect(yield* Ref.get(world.claims)).toBe(1)
        yield* TestClock.adjust("1 second")
        expect(yield* Ref.get(world.claims)).toBe(2)
        yield* TestClock.adjust("5 minutes")
        expect(yield* Ref.get(world.claims)).toBe(7)
        yield* Fiber.interrupt(fiber)
      }).pipe(Effect.provide(monitorWith(world)))
    }))

  it.effect("a tick that fails, then one that dies, are logged and the next tick runs: the daemon outlives them", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      yield* Effect.gen(function*() {
        const monitor = yield* TokenMonitor
        const fiber = yield* Effect.fork(monitor.run)
        yield* TestClock.adjust(0)
        yield* TestClock.adjust("1 minute")
        yield* TestClock.adjust("1 minute")
        expect(yield* Ref.get(world.claims)).toBe(3)
        yield* TestClock.adjust("1 minute")
        expect(yield* Ref.get(world.claims)).toBe(4)
        expect(fiber.unsafePoll()).toBeNull()
        yield* Fiber.interrupt(fiber)
      }).pipe(Effect.provide(monitorWith(world, {
        claimFails: (n) => n === 2 ? Effect.fail(new DatabaseUnavailable({ message: "down" })) : n === 3 ? Effect.die("a bug") : undefined
      })))
    }))

  it.effect("a tick fails with the database's error when a claim fails", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const exit = yield* Effect.exit(tickOf(world, { claimFails: () => Effect.fail(new DatabaseUnavailable({ message: "down" })) }))
      expect(exit).toEqual(Exit.fail(new DatabaseUnavailable({ message: "down" })))
    }))

  it.effect("every outcome is stored with its events: refreshed, recovered, needs_reauth, failures with backoff, a skip for an open breaker", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld([
        row("ok"),
        row("back", { refreshFailures: 2 }),
        row("open"),
        row("dead"),
        row("flaky"),
        row("tolerated", { platform: "bing" }),
        row("limited")
      ])
      const report = yield* tickOf(world, {
        answer: (id) => {
          switch (id) {
            case "open":
              return Effect.fail(new CircuitOpen({ platform: "gsc", retryAfterMs: 1000 }))
            case "dead":
            case "tolerated":
              return Effect.fail(new InvalidGrant({ platform: "gsc" }))
            case "flaky":
              return Effect.fail(new ProviderUnavailable({ platform: "gsc", reason: "status", status: 503 }))
            case "limited":
              return Effect.fail(new RateLimited({ platform: "gsc", retryAfterMs: 2 * 3600_000 }))
            default:
              return Effect.succeed(grant)
          }
        }
      })
      expect(report).toMatchObject({
        due: 7,
        refreshed: 2,
        skipped: 1,
        needsReauth: 1,
        failed: { ProviderUnavailable: 2, RateLimited: 1 }
      })
      const writes = new Map((yield* Ref.get(world.writes)).map((w) => [w.id, w]))
      const failed = (reason: string, at: number) => ({
        kind: "refresh_failed",
        detail: { reason, failures: 1, next_attempt_at: new Date(at).toISOString() }
      })
      expect(writes.get("ok")).toEqual({ id: "ok", write: "storeRefresh", events: [{ kind: "refreshed", detail: { rotated: false } }] })
      expect(writes.get("back")?.events).toEqual([
        { kind: "refreshed", detail: { rotated: false } },
        { kind: "recovered", detail: { after_failures: 2, alerted: false } }
      ])
      expect(writes.get("dead")).toEqual({ id: "dead", write: "markDead", events: [{ kind: "needs_reauth", detail: { reason: "invalid_grant" } }] })
      expect(writes.get("flaky")?.events).toEqual([failed("ProviderUnavailable", 60_000)])
      expect(writes.get("tolerated")?.events).toEqual([failed("InvalidGrant", 60_000)])
      // The platform asked for 2 h: longer than the 1 min backoff, and capped by RETRY_AFTER_MAX (1 h).
      expect(writes.get("limited")?.events).toEqual([failed("RateLimited", 3600_000)])
      expect(writes.has("open")).toBe(false)
      expect(yield* Ref.get(world.published)).toBe(6)
    }))

  it.effect("rows skipped because the breaker is open are attempted once per tick, then released together when it ends", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld([row("s1"), row("s2"), row("s3")])
      const report = yield* tickOf(world, { answer: () => Effect.fail(new CircuitOpen({ platform: "gsc", retryAfterMs: 1000 })) }, settings({ batch: 2 }))
      expect(report).toMatchObject({ due: 3, skipped: 3, failed: {} })
      expect(yield* Ref.get(world.claims)).toBe(2)
      expect(yield* Ref.get(world.platformCalls)).toBe(3)
      expect((yield* Ref.get(world.released)).map((ids) => [...ids].sort())).toEqual([["s1", "s2", "s3"]])
      expect([...world.rows.values()].every((e) => e.owner === null)).toBe(true)
    }))

  it.effect("rows of a platform that is not configured are attempted once per tick, not claimed again and again", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld([row("u1", { platform: "nowhere" }), row("u2", { platform: "nowhere" }), row("u3", { platform: "nowhere" })])
      const report = yield* tickOf(world, {}, settings({ batch: 2 }))
      expect(report).toMatchObject({ due: 3, failed: { UnknownPlatform: 3 } })
      expect(yield* Ref.get(world.claims)).toBe(2)
    }))

  it.effect("a claimed row whose lease has less time left than the platform's budget is not sent to the platform", () =>
    Effect.gen(function*() {
      // Lease 60 s, budget 30 s, one at a time, 20 s per refresh: the third row would start with 20 s left.
      const world = yield* makeWorld([row("l1"), row("l2"), row("l3")])
      const fiber = yield* Effect.fork(tickOf(world, {
        budget: Duration.seconds(30),
        answer: () => Effect.as(Effect.sleep("20 seconds"), grant)
      }, settings({ concurrency: 1 }, Duration.seconds(60))))
      yield* TestClock.adjust("1 minute")
      const report = yield* Fiber.join(fiber)
      expect(report).toMatchObject({ due: 3, refreshed: 2, skipped: 1 })
      expect(yield* Ref.get(world.platformCalls)).toBe(2)
      expect(yield* Ref.get(world.released)).toEqual([["l3"]])
    }))

  it.effect("MONITOR_CONCURRENCY bounds the answers a process holds unstored: a worker's next call waits until its last answer is stored", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld([row("p1"), row("p2"), row("p3")])
      const fiber = yield* Effect.fork(tickOf(world, {
        answer: () => Effect.as(Effect.sleep("1 second"), grant),
        storeTakes: Duration.seconds(5)
      }, settings({ concurrency: 1 })))
      // One worker: answered at 1 s, stored at 6 s; only then the second call goes out.
      yield* TestClock.adjust("2500 millis")
      expect(yield* Ref.get(world.platformCalls)).toBe(1)
      expect(yield* Ref.get(world.writes)).toEqual([])
      yield* TestClock.adjust("4 seconds")
      expect(yield* Ref.get(world.platformCalls)).toBe(2)
      expect((yield* Ref.get(world.writes)).map((w) => w.id)).toEqual(["p1"])
      // The pass ends only once every answer is stored: the third at 18 s.
      yield* TestClock.adjust("11 seconds")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 second")
      const report = yield* Fiber.join(fiber)
      expect(report).toMatchObject({ due: 3, refreshed: 3, failed: {} })
      expect((yield* Ref.get(world.writes)).map((w) => w.id)).toEqual(["p1", "p2", "p3"])
    }))

  it.effect("a refresh in flight when the tick is interrupted runs to its end and is stored; rows not started are released", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld([row("i1"), row("i2")])
      const fiber = yield* Effect.fork(tickOf(world, { answer: () => Effect.as(Effect.sleep("10 seconds"), grant) }, settings({ concurrency: 1 })))
      yield* TestClock.adjust("1 second")
      const interruption = yield* Effect.fork(Fiber.interrupt(fiber))
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(interruption)
      expect((yield* Ref.get(world.writes)).map((w) => [w.id, w.write])).toEqual([["i1", "storeRefresh"]])
      expect(yield* Ref.get(world.platformCalls)).toBe(1)
      expect(world.rows.get("i2")?.owner).toBeNull()
    }))

  it.effect("warns once per connection that cannot be refreshed and expires within the warning period, and counts the warnings", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const warned = withTags(monitorConnections, { platform: "gsc", outcome: "warned", reason: "" })
      const before = yield* counter(warned)
      const expiring = [row("w1", { hasRefreshToken: false }), row("w2", { hasRefreshToken: false })]
      const report = yield* tickOf(world, { expiring })
      expect(report.warned).toBe(2)
      expect((yield* counter(warned)) - before).toBe(2)
    }))

  it.effect("an open breaker counts as a skip, not as a refresh failure, in the metrics", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld([row("m1")])
      const failures = withTags(refreshes, { platform: "gsc", outcome: "failure", reason: "CircuitOpen" })
      const skipped = withTags(refreshes, { platform: "gsc", outcome: "skipped", reason: "CircuitOpen" })
      const monitorSkips = withTags(monitorConnections, { platform: "gsc", outcome: "skipped", reason: "" })
      const before = yield* Effect.all([counter(failures), counter(skipped), counter(monitorSkips)])
      yield* tickOf(world, { answer: () => Effect.fail(new CircuitOpen({ platform: "gsc", retryAfterMs: 1000 })) })
      const after = yield* Effect.all([counter(failures), counter(skipped), counter(monitorSkips)])
      expect(after.map((n, i) => n - (before[i] ?? 0))).toEqual([0, 1, 1])
    }))

  it.effect("the tick's log line carries the failures by reason", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld([row("f1"), row("f2"), row("f3")])
      const lines: Array<{ readonly message: unknown; readonly annotations: Record<string, unknown> }> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ annotations, message }) => void lines.push({ message, annotations: Object.fromEntries(HashMap.toEntries(annotations)) }))
      )
      yield* tickOf(world, {
        answer: (id) =>
          id === "f3"
            ? Effect.fail(new RateLimited({ platform: "gsc" }))
            : Effect.fail(new ProviderUnavailable({ platform: "gsc", reason: "timeout" }))
      }).pipe(Effect.provide(capture))
      const tick = lines.find((l) => Array.isArray(l.message) && l.message.includes("monitor tick"))
      expect(tick?.annotations).toMatchObject({
        due: 3,
        failed: 3,
        failed_by_reason: { ProviderUnavailable: 2, RateLimited: 1 }
      })
      // And the pass is recorded for `status`, with the same figures.
      expect(world.passes).toEqual([expect.objectContaining({ due: 3, failed: 3, failed_by_reason: { ProviderUnavailable: 2, RateLimited: 1 } })])
    }))

  it.effect("claims batch after batch until a claim comes back short", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld(Array.from({ length: 7 }, (_, i) => row(`b${i}`)))
      const report = yield* tickOf(world, {}, settings({ batch: 3 }))
      expect(yield* Ref.get(world.claims)).toBe(3)
      expect(report.refreshed).toBe(7)
    }))

  it.effect("claims the next batch while the last rows of the one before are in flight, not once they are done", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld(Array.from({ length: 6 }, (_, i) => row(`n${i}`)))
      const fiber = yield* Effect.fork(tickOf(world, { answer: () => Effect.as(Effect.sleep("1 second"), grant) }, settings({ batch: 3, concurrency: 1 })))
      // One call at a time, 1 s each: the third row of the first batch goes out at 2 s, and the second claim with it.
      yield* TestClock.adjust("2500 millis")
      const atTwoAndAHalf = [yield* Ref.get(world.platformCalls), yield* Ref.get(world.claims)]
      yield* TestClock.adjust("5 seconds")
      const report = yield* Fiber.join(fiber)
      expect(atTwoAndAHalf).toEqual([3, 2])
      expect(report).toMatchObject({ due: 6, refreshed: 6 })
      expect(yield* Ref.get(world.claims)).toBe(3)
    }))

  it.effect("refreshes with at most MONITOR_CONCURRENCY in flight", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld(Array.from({ length: 20 }, (_, i) => row(`c${i}`)))
      const inFlight = yield* Ref.make(0)
      const peak = yield* Ref.make(0)
      const fiber = yield* Effect.fork(tickOf(world, {
        answer: () =>
          Effect.gen(function*() {
            const now = yield* Ref.updateAndGet(inFlight, (x) => x + 1)
            yield* Ref.update(peak, (p) => Math.max(p, now))
            yield* Effect.sleep("1 second")
            yield* Ref.update(inFlight, (x) => x - 1)
            return grant
          })
      }, settings({ concurrency: 3 })))
      yield* TestClock.adjust("10 seconds")
      const report = yield* Fiber.join(fiber)
      expect(report.refreshed).toBe(20)
      expect(yield* Ref.get(peak)).toBe(3)
    }))

  it.effect("MonitorLive runs the monitor until its scope closes", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(MonitorLive.pipe(Layer.provide(monitorWith(world)), Layer.provide(settings())), scope)
      yield* TestClock.adjust("1 minute")
      expect(yield* Ref.get(world.claims)).toBe(2)
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust("5 minutes")
      expect(yield* Ref.get(world.claims)).toBe(2)
    }))

  it.effect("MonitorLive does not run the monitor when MONITOR_ENABLED=false", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Layer.build(MonitorLive.pipe(Layer.provide(monitorWith(world)), Layer.provide(settings({ enabled: false }))))
        yield* TestClock.adjust("5 minutes")
      }))
      expect(yield* Ref.get(world.claims)).toBe(0)
    }))
})
