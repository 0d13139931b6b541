import { SqlClient } from "@effect/sql"
import { describe, expect, it, layer } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, HashMap, Layer, Logger, Ref, Schedule, TestClock } from "effect"
import { AppConfig } from "../../src/config/AppConfig.js"
import { EventRepository } from "../../src/db/EventRepository.js"
import { StateRepository } from "../../src/db/StateRepository.js"
import { WebhookRepository } from "../../src/db/WebhookRepository.js"
import { ConnectSessionRepository } from "../../src/db/ConnectSessionRepository.js"
import type { EventKind } from "../../src/domain/Connection.js"
import { DatabaseUnavailable } from "../../src/domain/errors.js"
import { Grants } from "../../src/integrations/Grants.js"
import { cleanupJobs, CleanupLive, cleanupPass, EVENTS_BATCH, runCleanup, STATES_BATCH } from "../../src/integrations/Cleanup.js"
import { testConfig, testSettings } from "../support/config.js"
import { TestDatabaseLive } from "../support/database.js"
import { post } from "../support/flow.js"
import { Harness, HarnessLive } from "../support/harness.js"

const DAY = Duration.toMillis(Duration.days(1))

/** Log lines as (message, annotations), for the effect it is provided to. */
const captureLogs = (lines: Array<{ readonly message: unknown; readonly annotations: Record<string, unknown> }>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ annotations, message }) => void lines.push({ message, annotations: Object.fromEntries(HashMap.toEntries(annotations)) }))
  )

const messageOf = (line: { readonly message: unknown }) => (Array.isArray(line.message) ? line.message[0] : line.message)

describe("cleanup schedule and passes (fake jobs, TestClock)", () => {
  it.effect("runs every job at start, then again a minute after each pass", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const fiber = yield* Effect.fork(runCleanup({ counted: Effect.as(Ref.update(runs, (n) => n + 1), 0) }))
      yield* TestClock.adjust(0)
      expect(yield* Ref.get(runs)).toBe(1)
      yield* TestClock.adjust("59 seconds")
      expect(yield* Ref.get(runs)).toBe(1)
      yield* TestClock.adjust("1 second")
      expect(yield* Ref.get(runs)).toBe(2)
      yield* TestClock.adjust("10 minutes")
      expect(yield* Ref.get(runs)).toBe(12)
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("a job that fails or dies is logged, the others still run, and it is tried again at the next pass", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make({ failing: 0, dying: 0, fine: 0 })
      const lines: Array<{ readonly message: unknown; readonly annotations: Record<string, unknown> }> = []
      const count = (job: "failing" | "dying" | "fine") => Ref.update(attempts, (a) => ({ ...a, [job]: a[job] + 1 }))
      const fiber = yield* Effect.fork(runCleanup({
        failing: Effect.zipRight(count("failing"), Effect.fail(new DatabaseUnavailable({ message: "down" }))),
        dying: Effect.zipRight(count("dying"), Effect.dieMessage("a bug")),
        fine: Effect.as(count("fine"), 1)
      }).pipe(Effect.provide(captureLogs(lines))))
      yield* TestClock.adjust(0)
      yield* TestClock.adjust("1 minute")
      expect(yield* Ref.get(attempts)).toEqual({ failing: 2, dying: 2, fine: 2 })
      expect(fiber.unsafePoll()).toBeNull()
      const failures = lines.filter((l) => messageOf(l) === "cleanup job failed; it runs again at the next pass")
      expect(failures.map((l) => l.annotations["job"])).toEqual(["failing", "dying", "failing", "dying"])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("logs one line with what each job deleted when something was, and none when nothing was", () =>
    Effect.gen(function*() {
      const lines: Array<{ readonly message: unknown; readonly annotations: Record<string, unknown> }> = []
      const deleted = yield* cleanupPass({ some: Effect.succeed(3), none: Effect.succeed(0) }).pipe(Effect.provide(captureLogs(lines)))
      expect(deleted).toEqual({ some: 3 })
      yield* cleanupPass({ none: Effect.succeed(0) }).pipe(Effect.provide(captureLogs(lines)))
      const cleanupLines = lines.filter((l) => messageOf(l) === "cleanup deleted")
      expect(cleanupLines).toHaveLength(1)
      expect(cleanupLines[0]?.annotations).toMatchObject({ some: 3, duration_ms: 0 })
      expect(cleanupLines[0]?.annotations).not.toHaveProperty("none")
    }))
})

const nowDate = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

const daysAgo = (now: Date, days: number) => new Date(now.getTime() - days * DAY)

/** One pass of the cleanup's own jobs over the services in context. */
const pass = Effect.flatMap(Effect.all(cleanupJobs), cleanupPass)

const kindsLeft = (userId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ kind: string; ageDays: number }>`select kind, round(extract(epoch from now() - at) / 86400)::int as age_days
    from oauth_events where user_id = ${userId} order by at, kind`).pipe(Effect.map((rows) => rows.map((r) => `${r.kind}@${r.ageDays}d`)))

const appendAll = (userId: string, events: ReadonlyArray<readonly [EventKind, number]>) =>
  Effect.gen(function*() {
    const repo = yield* EventRepository
    const now = yield* nowDate
    for (const [kind, days] of events) yield* repo.append({ connectionId: null, userId, platform: "gsc", kind }, daysAgo(now, days))
  })

const count = (sql: SqlClient.SqlClient, table: "oauth_states" | "oauth_events", userId: string) =>
  sql<{ n: number }>`select count(*)::int as n from ${sql(table)} where user_id = ${userId}`.pipe(Effect.map((rows) => rows[0]?.n ?? -1))

describe("cleanup jobs on PostgreSQL", () => {
  // Retentions unlike the defaults: the jobs read them from the configuration.
  const retention = { events: Duration.days(30), refreshEvents: Duration.days(2) }
  // Pending grants are revoked through the platforms: their job has tests of its own (test/http/confirmation.test.ts).
  const noPendingGrants = Layer.mock(Grants, { _tag: "Integrations/Grants", purgeExpired: Effect.succeed(0) })
  const webhooks = { ...testSettings().webhooks, retention: Duration.days(7), failedRetention: Duration.days(30) }
  const services = Layer.mergeAll(
    StateRepository.Default,
    EventRepository.Default,
    WebhookRepository.Default,
    ConnectSessionRepository.Default,
    noPendingGrants,
    testConfig({ retention, webhooks })
  )
  layer(services.pipe(Layer.provideMerge(TestDatabaseLive)), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("deletes events of every kind older than EVENTS_RETENTION and keeps newer ones", () =>
      Effect.gen(function*() {
        yield* appendAll("u-retention", [["connected", 40], ["refresh_failed", 31], ["needs_reauth", 29], ["revoked", 1]])
        yield* pass
        expect(yield* kindsLeft("u-retention")).toEqual(["needs_reauth@29d", "revoked@1d"])
      }))

    it.effect("deletes refreshed events older than REFRESH_EVENTS_RETENTION and keeps newer ones and every other kind", () =>
      Effect.gen(function*() {
        yield* appendAll("u-refreshes", [["refreshed", 5], ["refresh_failed", 5], ["expiring_soon", 3], ["refreshed", 3], ["refreshed", 1], ["recovered", 1]])
        yield* pass
        expect(yield* kindsLeft("u-refreshes")).toEqual(["refresh_failed@5d", "expiring_soon@3d", "recovered@1d", "refreshed@1d"])
      }))

    it.effect("a backlog of expired authorisation requests larger than one batch is fully deleted, and live ones are kept", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const now = yield* nowDate
        const backlog = STATES_BATCH * 2 + 500
        yield* sql`insert into oauth_states (state_hash, user_id, platform, redirect_uri, mode, expires_at, created_at)
          select sha256(('expired-' || g)::bytea), 'u-state-backlog', 'gsc', 'https://app.example.com/oauth/gsc/callback', 'redirect',
            ${new Date(now.getTime() - 60_000)}, ${new Date(now.getTime() - 660_000)}
          from generate_series(1, ${backlog}) g`
        yield* sql`insert into oauth_states (state_hash, user_id, platform, redirect_uri, mode, expires_at, created_at)
          values (sha256('live'::bytea), 'u-state-live', 'gsc', 'https://app.example.com/oauth/gsc/callback', 'redirect',
            ${new Date(now.getTime() + 600_000)}, ${now})`
        const deleted = yield* pass
        expect(deleted["expired_states"]).toBeGreaterThanOrEqual(backlog)
        expect(yield* count(sql, "oauth_states", "u-state-backlog")).toBe(0)
        expect(yield* count(sql, "oauth_states", "u-state-live")).toBe(1)
      }))

    it.effect("deletes delivered webhooks older than WEBHOOK_RETENTION and failed ones older than WEBHOOK_FAILED_RETENTION; pending ones stay", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const now = yield* nowDate
        const rows: ReadonlyArray<readonly [string, string, number | null]> = [
          ["delivered-8d", "delivered", 8],
          ["delivered-6d", "delivered", 6],
          ["failed-31d", "failed", 31],
          ["failed-8d", "failed", 8],
          ["pending-40d", "pending", null]
        ]
        for (const [id, status, days] of rows) {
          yield* sql`insert into webhook_deliveries (message_id, endpoint, type, body, user_id, platform, status, created_at, finished_at)
            values (${id}, 'retention', 'connection.connected', '{}', 'u-webhook-retention', 'gsc', ${status},
              ${daysAgo(now, days ?? 40)}, ${days === null ? null : daysAgo(now, days)})`
        }
        const deleted = yield* pass
        expect(deleted["old_delivered_webhooks"]).toBeGreaterThanOrEqual(1)
        expect(deleted["old_failed_webhooks"]).toBeGreaterThanOrEqual(1)
        const left = yield* sql<{ messageId: string }>`select message_id from webhook_deliveries where endpoint = 'retention' order by message_id`
        expect(left.map((r) => r.messageId)).toEqual(["delivered-6d", "failed-8d", "pending-40d"])
      }))

    it.effect("deletes expired connect sessions and keeps live ones", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const now = yield* nowDate
        for (const [user, minutes] of [["cs-cleanup-old", -1], ["cs-cleanup-live", 10]] as const) {
          yield* sql`insert into connect_sessions (id, secret_hash, user_id, platforms, expires_at, created_at)
            values (gen_random_uuid(), sha256(${user}::bytea), ${user}, array['gsc'], ${new Date(now.getTime() + minutes * 60_000)}, ${now})`
        }
        const deleted = yield* pass
        expect(deleted["expired_connect_sessions"]).toBeGreaterThanOrEqual(1)
        const left = yield* sql<{ userId: string }>`select user_id from connect_sessions where user_id like 'cs-cleanup-%'`
        expect(left.map((r) => r.userId)).toEqual(["cs-cleanup-live"])
      }))

    it.effect("a backlog of old events larger than one batch is fully deleted", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const now = yield* nowDate
        const backlog = EVENTS_BATCH * 2 + 1
        // Older than EVENTS_RETENTION, and refreshed ones only older than REFRESH_EVENTS_RETENTION.
        yield* sql`insert into oauth_events (user_id, platform, kind, at)
          select 'u-event-backlog', 'gsc', 'connected', ${daysAgo(now, 31)} from generate_series(1, ${backlog})`
        yield* sql`insert into oauth_events (user_id, platform, kind, at)
          select 'u-refresh-backlog', 'gsc', 'refreshed', ${daysAgo(now, 3)} from generate_series(1, ${backlog})`
        const deleted = yield* pass
        expect(deleted["old_events"]).toBeGreaterThanOrEqual(backlog)
        expect(deleted["old_refreshed_events"]).toBeGreaterThanOrEqual(backlog)
        expect(yield* count(sql, "oauth_events", "u-event-backlog")).toBe(0)
        expect(yield* count(sql, "oauth_events", "u-refresh-backlog")).toBe(0)
      }))
  })
})

describe("cleanup in a serving process", () => {
  layer(HarnessLive(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("with the monitor off, expired authorisation requests are deleted when the cleanup starts", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const settings = yield* Effect.provide(AppConfig, instance.context)
        expect(settings.monitor.enabled).toBe(false)
        for (const user of ["u-late", "u-late", "u-prompt"]) {
          expect((yield* post(instance, `/v1/users/${user}/connections/gsc/authorize`)).status).toBe(200)
        }
        const sql = yield* Effect.provide(SqlClient.SqlClient, instance.context)
        yield* sql`update oauth_states set expires_at = now() - interval '1 second' where user_id = 'u-late'`
        expect(yield* count(sql, "oauth_states", "u-late")).toBe(2)

        yield* Effect.gen(function*() {
          yield* Layer.build(CleanupLive)
          yield* count(sql, "oauth_states", "u-late").pipe(
            Effect.repeat({ until: (n) => n === 0, schedule: Schedule.spaced("20 millis") }),
            Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the expired states are still there") })
          )
        }).pipe(Effect.scoped, Effect.provide(instance.context))
        expect(yield* count(sql, "oauth_states", "u-prompt")).toBe(1)
      }))
  })
})
