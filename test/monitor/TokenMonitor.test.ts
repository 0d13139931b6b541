import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Option, Ref, TestClock } from "effect"
import { type Claimed, ConnectionRepository } from "../../src/db/ConnectionRepository.js"
import { EventRepository, type NewEvent } from "../../src/db/EventRepository.js"
import type { Connection } from "../../src/domain/Connection.js"
import { CircuitOpen, DatabaseUnavailable, InvalidGrant, ProviderUnavailable } from "../../src/domain/errors.js"
import { Refresher } from "../../src/integrations/Refresher.js"
import { TokenMonitor } from "../../src/monitor/TokenMonitor.js"
import { testConfig, testSettings } from "../support/config.js"
import { connectionRow } from "../support/connections.js"
import { at } from "../support/time.js"

const row = (id: string, overrides: Partial<Connection> = {}) =>
  connectionRow({ id, userId: `user-${id}`, scope: null, expiresAt: at(60), ...overrides })

const settings = (monitor: Partial<ReturnType<typeof testSettings>["monitor"]> = {}) =>
  testConfig({ monitor: { ...testSettings().monitor, enabled: true, interval: Duration.minutes(1), ...monitor } })

interface World {
  readonly claims: Ref.Ref<number>
  readonly events: Ref.Ref<ReadonlyArray<NewEvent>>
}

/** The monitor over mock repositories and a mock refresher. */
const monitorWith = (
  world: World,
  mocks: {
    readonly claimDueRefreshes?: (call: number) => Effect.Effect<ReadonlyArray<Connection>, DatabaseUnavailable>
    readonly refreshHeld?: (row: Connection) => ReturnType<Refresher["refreshHeld"]>
    readonly expiring?: ReadonlyArray<Connection>
    readonly statusAfter?: (id: string) => Connection["status"]
  },
  config = settings()
) =>
  TokenMonitor.Default.pipe(
    Layer.provide(Layer.mock(ConnectionRepository, {
      _tag: "Integrations/ConnectionRepository",
      claimDueRefreshes: () =>
        Effect.flatMap(Ref.updateAndGet(world.claims, (n) => n + 1), (n) => mocks.claimDueRefreshes?.(n) ?? Effect.succeed([])).pipe(
          Effect.map((rows) => rows.map((connection) => ({ connection, sealed: { keyId: "k1", accessToken: null, refreshToken: null } })))
        ),
      claimDueValidations: () => Effect.succeed([]),
      claimExpiryWarnings: () => Effect.succeed(mocks.expiring ?? []),
      findById: (id: string) => Effect.succeed(Option.some(row(id, { status: mocks.statusAfter?.(id) ?? "active" })))
    })),
    Layer.provide(Layer.mock(EventRepository, {
      _tag: "Integrations/EventRepository",
      append: (event: NewEvent) => Ref.update(world.events, (all) => [...all, event])
    })),
    Layer.provide(Layer.mock(Refresher, {
      _tag: "Integrations/Refresher",
      refreshHeld: (claimed: Claimed) => mocks.refreshHeld?.(claimed.connection) ?? Effect.succeed(claimed.connection),
      validateHeld: (claimed: Claimed) => Effect.succeed(claimed.connection)
    })),
    Layer.provide(config)
  )

const makeWorld = Effect.all({ claims: Ref.make(0), events: Ref.make<ReadonlyArray<NewEvent>>([]) })

describe("token monitor (mock layers, TestClock)", () => {
  it.effect("ticks at once, then every MONITOR_INTERVAL", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
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
      }).pipe(Effect.provide(monitorWith(world, {})))
    }))

  it.effect("a failing tick is logged and the next tick runs: the daemon outlives it", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
      yield* Effect.gen(function*() {
        const monitor = yield* TokenMonitor
        const fiber = yield* Effect.fork(monitor.run)
        yield* TestClock.adjust(0)
        yield* TestClock.adjust("1 minute")
        yield* TestClock.adjust("1 minute")
        expect(yield* Ref.get(world.claims)).toBe(3)
        expect(fiber.unsafePoll()).toBeNull()
        yield* Fiber.interrupt(fiber)
      }).pipe(Effect.provide(monitorWith(world, {
        claimDueRefreshes: (n) => n === 2 ? Effect.fail(new DatabaseUnavailable({ message: "down" })) : n === 3 ? Effect.die("a bug") : Effect.succeed([])
      })))
    }))

  it.effect("classifies every outcome: refreshed, skipped when the breaker is open, needs_reauth, and failures by reason", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
      const rows = ["ok", "open", "dead", "flaky", "tolerated"].map((id) => row(id))
      const report = yield* Effect.flatMap(TokenMonitor, (m) => m.tick).pipe(
        Effect.provide(monitorWith(world, {
          claimDueRefreshes: (n) => Effect.succeed(n === 1 ? rows : []),
          refreshHeld: (r) => {
            switch (r.id) {
              case "open":
                return Effect.fail(new CircuitOpen({ platform: "gsc", retryAfterMs: 1000 }))
              case "dead":
              case "tolerated":
                return Effect.fail(new InvalidGrant({ platform: "gsc" }))
              case "flaky":
                return Effect.fail(new ProviderUnavailable({ platform: "gsc", reason: "status", status: 503 }))
              default:
                return Effect.succeed(r)
            }
          },
          statusAfter: (id) => (id === "dead" ? "needs_reauth" : "active")
        }))
      )
      expect(report).toMatchObject({
        due: 5,
        refreshed: 1,
        skipped: 1,
        needsReauth: 1,
        failed: { ProviderUnavailable: 1, InvalidGrant: 1 }
      })
    }))

  it.effect("warns once per connection that cannot be refreshed and expires within the warning period", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
      const expiring = [row("w1", { hasRefreshToken: false, expiresAt: at(86_400) }), row("w2", { hasRefreshToken: false, expiresAt: at(3600) })]
      const report = yield* Effect.flatMap(TokenMonitor, (m) => m.tick).pipe(Effect.provide(monitorWith(world, { expiring })))
      expect(report.warned).toBe(2)
      const events = yield* Ref.get(world.events)
      expect(events.map((e) => [e.kind, e.connectionId])).toEqual([["expiring_soon", "w1"], ["expiring_soon", "w2"]])
      expect(events[0]?.detail).toEqual({ expires_at: at(86_400).toISOString(), reason: "no_refresh_token" })
    }))

  it.effect("claims batch after batch until a claim comes back short", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
      const batch = (n: number) => Array.from({ length: n }, (_, i) => row(`b${i}`))
      const report = yield* Effect.flatMap(TokenMonitor, (m) => m.tick).pipe(
        Effect.provide(monitorWith(world, { claimDueRefreshes: (n) => Effect.succeed(n <= 2 ? batch(3) : batch(1)) }, settings({ batch: 3 })))
      )
      expect(yield* Ref.get(world.claims)).toBe(3)
      expect(report.refreshed).toBe(7)
    }))

  it.effect("refreshes with at most MONITOR_CONCURRENCY in flight", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
      const inFlight = yield* Ref.make(0)
      const peak = yield* Ref.make(0)
      const rows = Array.from({ length: 20 }, (_, i) => row(`c${i}`))
      const fiber = yield* Effect.fork(Effect.flatMap(TokenMonitor, (m) => m.tick).pipe(
        Effect.provide(monitorWith(world, {
          claimDueRefreshes: (n) => Effect.succeed(n === 1 ? rows : []),
          refreshHeld: (r) =>
            Effect.gen(function*() {
              const now = yield* Ref.updateAndGet(inFlight, (x) => x + 1)
              yield* Ref.update(peak, (p) => Math.max(p, now))
              yield* Effect.sleep("1 second")
              yield* Ref.update(inFlight, (x) => x - 1)
              return r
            })
        }, settings({ concurrency: 3 })))
      ))
      yield* TestClock.adjust("10 seconds")
      const report = yield* Fiber.join(fiber)
      expect(report.refreshed).toBe(20)
      expect(yield* Ref.get(peak)).toBe(3)
    }))
})
