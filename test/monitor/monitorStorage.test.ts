import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Duration, Effect, Fiber, Metric, Option, Redacted } from "effect"
import { pgClientLayer } from "../../src/db/Database.js"
import { ConnectionRepository } from "../../src/db/ConnectionRepository.js"
import { ConnectionStatusJson, TokenResponseJson } from "../../src/http/schemas.js"
import { Refresher } from "../../src/integrations/Refresher.js"
import { type TickReport, TokenMonitor } from "../../src/monitor/TokenMonitor.js"
import { withTags } from "../../src/observability/labels.js"
import { monitorTicks } from "../../src/observability/metrics.js"
import { adminUrl, testPool } from "../support/database.js"
import { type Instance, startInstance, TOKEN_KEY } from "../support/app.js"
import { call, connect, json } from "../support/flow.js"
import { FRONTEND, Harness, HarnessLive } from "../support/harness.js"
import { testSettings } from "../support/config.js"
import { seedDueConnections } from "../support/connections.js"

const fast = { RETRY_INITIAL_DELAY: "5ms", RETRY_MAX_DELAY: "20ms" }

const monitorOf = (instance: Instance) => TokenMonitor.pipe(Effect.provide(instance.context))
const within = (instance: Instance) => <A, E>(effect: Effect.Effect<A, E, ConnectionRepository | Refresher | SqlClient.SqlClient>) =>
  Effect.provide(effect, instance.context)

const sql = (instance: Instance, text: string) => within(instance)(Effect.flatMap(SqlClient.SqlClient, (s) => s.unsafe(text)))

const events = (instance: Instance, user: string) =>
  within(instance)(Effect.flatMap(SqlClient.SqlClient, (s) =>
    s<{ kind: string }>`select kind from oauth_events where user_id = ${user} order by id`)).pipe(Effect.map((rows) => rows.map((r) => r.kind)))

const rowOf = (instance: Instance, user: string) =>
  within(instance)(Effect.flatMap(SqlClient.SqlClient, (s) =>
    s<{ status: string; expiresAt: Date | null; nextAttemptAt: Date | null; refreshFailures: number; leaseUntil: Date | null }>`
      select status, expires_at, next_attempt_at, refresh_failures, lease_until from oauth_connections where user_id = ${user}`)).pipe(
    Effect.map((rows) => rows[0])
  )

const makeDue = (instance: Instance, user: string) =>
  sql(instance, `update oauth_connections set expires_at = now() + interval '1 minute' where user_id = '${user}'`)

const monitorSettings = (more: Partial<ReturnType<typeof testSettings>["monitor"]> = {}) => ({ monitor: { ...testSettings().monitor, ...more } })

const tokenOf = (instance: Instance, user: string, platform: string) =>
  Effect.flatMap(call(instance, `/v1/users/${user}/connections/${platform}/token`, { key: TOKEN_KEY }), (r) => json(r, TokenResponseJson))

const statusOf = (instance: Instance, user: string, platform: string) =>
  Effect.flatMap(call(instance, `/v1/users/${user}/connections/${platform}`), (r) => json(r, ConnectionStatusJson))

/** The stored tokens of the user's connection, decrypted. */
const storedTokens = (instance: Instance, user: string, platform: string) =>
  within(instance)(Effect.flatMap(ConnectionRepository, (repo) =>
    Effect.flatMap(repo.findByUserAndPlatform(user, platform), (rows) => repo.tokens(rows[0]!))))

const failedTicks = Metric.value(withTags(monitorTicks, { result: "failed" })).pipe(Effect.map((s) => s.count))

describe("token monitor on PostgreSQL against the fake platforms", () => {
  layer(HarnessLive({ env: fast }), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.effect("refreshes a due connection and records it", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "mon-ok", "gsc")
        yield* makeDue(instance, "mon-ok")
        const report = yield* Effect.flatMap(monitorOf(instance), (m) => m.tick)
        expect(report).toMatchObject({ due: 1, refreshed: 1, failed: {} })
        const row = yield* rowOf(instance, "mon-ok")
        expect(row?.expiresAt?.getTime()).toBeGreaterThan(Date.now() + 50 * 60 * 1000)
        expect(yield* events(instance, "mon-ok")).toEqual(["connected", "refreshed"])
        expect((yield* Effect.flatMap(monitorOf(instance), (m) => m.tick)).due).toBe(0)
      }))

    it.effect("invalid_grant: needs_reauth and its event", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "mon-dead", "gsc")
        yield* makeDue(instance, "mon-dead")
        fakes.gsc.setBehaviour("token", "invalid_grant", { times: 1 })
        const report = yield* Effect.flatMap(monitorOf(instance), (m) => m.tick)
        expect(report).toMatchObject({ due: 1, needsReauth: 1, failed: {} })
        expect((yield* rowOf(instance, "mon-dead"))?.status).toBe("needs_reauth")
        expect(yield* events(instance, "mon-dead")).toEqual(["connected", "needs_reauth"])
      }))

    it.effect("transient failure: next attempt with backoff and an event; after it, a success records recovery", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "mon-flaky", "wix")
        yield* makeDue(instance, "mon-flaky")
        fakes.wix.setBehaviour("token", "unavailable", { times: 4 })
        const report = yield* Effect.flatMap(monitorOf(instance), (m) => m.tick)
        expect(report.failed).toEqual({ ProviderUnavailable: 1 })
        const failed = yield* rowOf(instance, "mon-flaky")
        expect(failed).toMatchObject({ status: "active", refreshFailures: 1 })
        expect(failed?.nextAttemptAt?.getTime()).toBeGreaterThan(Date.now() + 50_000)
        expect((yield* Effect.flatMap(monitorOf(instance), (m) => m.tick)).due).toBe(0)
        yield* sql(instance, `update oauth_connections set next_attempt_at = now() where user_id = 'mon-flaky'`)
        expect((yield* Effect.flatMap(monitorOf(instance), (m) => m.tick)).refreshed).toBe(1)
        expect(yield* events(instance, "mon-flaky")).toEqual(["connected", "refresh_failed", "refreshed", "recovered"])
      }))

    it.effect("an open breaker skips the platform's remaining connections without counting them as failures", () =>
      Effect.gen(function*() {
        const { databaseUrl, env, fakes } = yield* Harness
        const instance = yield* startInstance({
          databaseUrl,
          env: { ...env, BING_BREAKER_FAILURE_THRESHOLD: "2", BING_RETRY_MAX: "0" },
          settings: { frontendUrl: new URL(FRONTEND), ...monitorSettings({ concurrency: 1 }) }
        })
        const users = ["mon-br-1", "mon-br-2", "mon-br-3"]
        for (const u of users) {
          yield* connect(instance, u, "bing")
          yield* makeDue(instance, u)
        }
        fakes.bing.setBehaviour("token", "unavailable", { times: 2 })
        const report = yield* Effect.flatMap(monitorOf(instance), (m) => m.tick)
        expect(report).toMatchObject({ due: 3, skipped: 1, failed: { ProviderUnavailable: 2 } })
        const rows = yield* Effect.forEach(users, (u) => rowOf(instance, u))
        expect(rows.map((r) => r?.refreshFailures).sort()).toEqual([0, 1, 1])
        expect(rows.every((r) => r?.status === "active" && r.leaseUntil === null)).toBe(true)
      }).pipe(Effect.scoped))

    it.effect("a token that cannot be refreshed and expires within the warning period: exactly one expiring_soon, even with two monitors", () =>
      Effect.gen(function*() {
        const { instance, databaseUrl, env } = yield* Harness
        yield* connect(instance, "mon-warn", "bing")
        yield* sql(instance, `update oauth_connections set refresh_token = null, expires_at = now() + interval '3 days' where user_id = 'mon-warn'`)
        const other = yield* startInstance({ databaseUrl, env, settings: { frontendUrl: new URL(FRONTEND) } })
        const [a, b] = yield* Effect.all([monitorOf(instance), monitorOf(other)])
        yield* Effect.all([a.tick, b.tick, a.tick], { concurrency: "unbounded" })
        yield* b.tick
        expect((yield* events(instance, "mon-warn")).filter((k) => k === "expiring_soon")).toHaveLength(1)
      }).pipe(Effect.scoped))

    it.effect("tokens that do not expire are validated: refused with 403 → revoked; accepted → not again until VALIDATE_INTERVAL", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "mon-wp-ok", "wordpress")
        yield* connect(instance, "mon-wp-dead", "wordpress")
        fakes.wordpress.setBehaviour("me", "ok")
        const meBefore = fakes.wordpress.requestsTo("me").length
        // Validate mon-wp-ok first, alone.
        yield* sql(instance, `update oauth_connections set last_validated_at = now() where user_id = 'mon-wp-dead'`)
        const first = yield* Effect.flatMap(monitorOf(instance), (m) => m.tick)
        expect(first.validated).toBeGreaterThanOrEqual(1)
        expect(fakes.wordpress.requestsTo("me").length).toBeGreaterThan(meBefore)
        expect((yield* Effect.flatMap(monitorOf(instance), (m) => m.tick)).validated).toBe(0)

        yield* sql(instance, `update oauth_connections set last_validated_at = now() - interval '25 hours' where user_id = 'mon-wp-dead'`)
        fakes.wordpress.setBehaviour("me", "forbidden", { times: 1 })
        const second = yield* Effect.flatMap(monitorOf(instance), (m) => m.tick)
        expect(second.needsReauth).toBe(1)
        expect((yield* rowOf(instance, "mon-wp-dead"))?.status).toBe("revoked")
        expect(yield* events(instance, "mon-wp-dead")).toEqual(["connected", "revoked"])
      }))

    it.effect("validation answered 401 marks the connection revoked, with its event", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "mon-wp-401", "wordpress")
        yield* sql(instance, `update oauth_connections set last_validated_at = now() where platform = 'wordpress' and user_id <> 'mon-wp-401'`)
        fakes.wordpress.setBehaviour("me", "unauthorized", { times: 1 })
        const report = yield* Effect.flatMap(monitorOf(instance), (m) => m.tick)
        expect(report.needsReauth).toBe(1)
        expect((yield* rowOf(instance, "mon-wp-401"))?.status).toBe("revoked")
        expect(yield* events(instance, "mon-wp-401")).toEqual(["connected", "revoked"])
      }))

    it.effect("a lease left by a process that died is taken over once it expires; nothing is lost", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "mon-lease", "bing")
        yield* makeDue(instance, "mon-lease")
        // A monitor claims it and dies before refreshing: the lease stays for 1 s.
        const claimed = yield* within(instance)(Effect.flatMap(ConnectionRepository, (repo) => {
          const now = new Date()
          return repo.claimDueRefreshes("dead-process", now, new Date(now.getTime() + 600_000), new Date(now.getTime() + 1000), 500)
        }))
        expect(claimed.map((c) => c.connection.userId)).toContain("mon-lease")
        expect((yield* Effect.flatMap(monitorOf(instance), (m) => m.tick)).due).toBe(0)
        yield* Effect.sleep("1100 millis")
        const refreshes = fakes.bing.stats.refreshes
        expect((yield* Effect.flatMap(monitorOf(instance), (m) => m.tick)).refreshed).toBe(1)
        expect(fakes.bing.stats.refreshes - refreshes).toBe(1)
        const token = yield* tokenOf(instance, "mon-lease", "bing")
        expect(fakes.bing.isLiveAccessToken(token.access_token)).toBe(true)
      }))

    it.effect("a tick interrupted while a rotating platform answers still stores the new tokens; the next refresh works", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "mon-int", "bing")
        yield* makeDue(instance, "mon-int")
        fakes.bing.setBehaviour("token", "slow", { times: 1, delayMs: 1000 })
        const invalidBefore = fakes.bing.stats.invalidGrants
        const monitor = yield* monitorOf(instance)
        const fiber = yield* Effect.fork(monitor.tick)
        yield* Effect.sleep("300 millis")
        yield* Fiber.interrupt(fiber)
        const row = yield* rowOf(instance, "mon-int")
        expect(row?.leaseUntil).toBeNull()
        expect(row?.expiresAt?.getTime()).toBeGreaterThan(Date.now() + 50 * 60 * 1000)
        const stored = yield* storedTokens(instance, "mon-int", "bing")
        expect(fakes.bing.isLiveRefreshToken(Redacted.value(Option.getOrThrow(stored.refreshToken)))).toBe(true)
        yield* makeDue(instance, "mon-int")
        expect((yield* monitor.tick).refreshed).toBe(1)
        expect(fakes.bing.stats.invalidGrants).toBe(invalidBefore)
        expect(yield* events(instance, "mon-int")).toEqual(["connected", "refreshed", "refreshed"])
      }))

    it.effect("bing: the monitor tolerates two invalid_grant in a row and marks the third needs_reauth", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "mon-bing3", "bing")
        yield* makeDue(instance, "mon-bing3")
        fakes.bing.spuriousInvalidGrant(3)
        const monitor = yield* monitorOf(instance)
        const reports: Array<TickReport> = []
        for (let i = 0; i < 3; i++) {
          reports.push(yield* monitor.tick)
          yield* sql(instance, `update oauth_connections set next_attempt_at = now() where user_id = 'mon-bing3'`)
        }
        expect(reports.map((r) => [r.failed, r.needsReauth])).toEqual([
          [{ ProviderUnavailable: 1 }, 0],
          [{ ProviderUnavailable: 1 }, 0],
          [{}, 1]
        ])
        expect((yield* rowOf(instance, "mon-bing3"))?.status).toBe("needs_reauth")
        expect(yield* events(instance, "mon-bing3")).toEqual(["connected", "refresh_failed", "refresh_failed", "needs_reauth"])
      }))

    it.effect("a connection the monitor marks needs_reauth shows as not connected at once on another instance (its cached status is dropped)", () =>
      Effect.gen(function*() {
        const { instance, startAnother, fakes } = yield* Harness
        yield* connect(instance, "mon-cache", "gsc")
        expect((yield* statusOf(instance, "mon-cache", "gsc")).connected).toBe(true)
        yield* makeDue(instance, "mon-cache")
        fakes.gsc.setBehaviour("token", "invalid_grant", { times: 1 })
        const other = yield* startAnother()
        expect((yield* Effect.flatMap(monitorOf(other), (m) => m.tick)).needsReauth).toBe(1)
        const seen = yield* Effect.gen(function*() {
          for (let i = 0; i < 50; i++) {
            const status = yield* statusOf(instance, "mon-cache", "gsc")
            if (!status.connected) return status.status
            yield* Effect.sleep("100 millis")
          }
          return "still connected"
        })
        expect(seen).toBe("needs_reauth")
      }).pipe(Effect.scoped))

    it.effect("the refresh endpoint's path raced against a monitor tick on the same rows: each connection is refreshed once", () =>
      Effect.gen(function*() {
        const { instance, startAnother, fakes } = yield* Harness
        const bing = fakes.bing
        const users = Array.from({ length: 40 }, (_, i) => `race-${i}`)
        yield* within(instance)(seedDueConnections(bing, "bing", users))
        const other = yield* startAnother()
        const rows = yield* within(instance)(Effect.flatMap(ConnectionRepository, (repo) =>
          Effect.forEach(users, (u) => Effect.map(repo.findByUserAndPlatform(u, "bing"), (found) => found[0]!))))
        const refreshesBefore = bing.stats.refreshes
        const invalidBefore = bing.stats.invalidGrants
        const byEndpoint = within(other)(Effect.flatMap(Refresher, (refresher) =>
          Effect.forEach(rows, (row) => Effect.either(refresher.refresh(row, { force: true })), { concurrency: 8 })))
        const [, answers] = yield* Effect.all([Effect.flatMap(monitorOf(instance), (m) => m.tick), byEndpoint], { concurrency: "unbounded" })
        expect(answers.every((a) => a._tag === "Right")).toBe(true)
        expect(bing.stats.refreshes - refreshesBefore).toBe(users.length)
        expect(bing.stats.invalidGrants).toBe(invalidBefore)
        const stored = yield* Effect.forEach(users, (u) => storedTokens(instance, u, "bing"))
        expect(stored.every((t) => Option.isSome(t.refreshToken) && bing.isLiveRefreshToken(Redacted.value(t.refreshToken.value)))).toBe(true)
      }).pipe(Effect.scoped))

    it.effect("the database dropping during ticks fails those ticks; the daemon lives on and catches up", () =>
      Effect.gen(function*() {
        const { databaseUrl, env, instance } = yield* Harness
        const daemonInstance = yield* startInstance({ databaseUrl, env, settings: { frontendUrl: new URL(FRONTEND), ...monitorSettings({ interval: Duration.millis(200) }) } })
        yield* connect(instance, "mon-db", "bing")
        const monitor = yield* monitorOf(daemonInstance)
        const daemon = yield* Effect.fork(monitor.run)
        const failedBefore = yield* failedTicks
        const name = new URL(databaseUrl).pathname.slice(1)
        const admin = <A, E>(e: Effect.Effect<A, E, SqlClient.SqlClient>) =>
          e.pipe(Effect.provide(pgClientLayer(Redacted.make(adminUrl()), { ...testPool, maxConnections: 1 })), Effect.orDie)
        yield* admin(Effect.flatMap(SqlClient.SqlClient, (s) => Effect.all([
          s.unsafe(`alter database ${name} allow_connections false`),
          s.unsafe(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${name}' and pid <> pg_backend_pid()`)
        ])))
        yield* Effect.sleep("700 millis")
        expect(daemon.unsafePoll()).toBeNull()
        expect(yield* failedTicks).toBeGreaterThan(failedBefore)
        yield* admin(Effect.flatMap(SqlClient.SqlClient, (s) => s.unsafe(`alter database ${name} allow_connections true`)))
        yield* makeDue(instance, "mon-db")
        const refreshed = yield* Effect.gen(function*() {
          for (let i = 0; i < 50; i++) {
            const row = yield* rowOf(instance, "mon-db")
            if (row?.expiresAt !== null && row !== undefined && row.expiresAt!.getTime() > Date.now() + 50 * 60 * 1000) return true
            yield* Effect.sleep("100 millis")
          }
          return false
        })
        expect(refreshed).toBe(true)
        expect(daemon.unsafePoll()).toBeNull()
        yield* Fiber.interrupt(daemon)
      }).pipe(Effect.scoped))
  })
})

/**
 * A platform answering in 20 ms, a 4 s lease, and claims of 400 refreshed 2 at a time: a
 * claim takes longer to work through than its lease lasts, so the other monitor takes the
 * rows at its tail (their lease expired) while they are still queued here. A refresh must
 * start with at least the platform's budget (500 ms retry budget + 2 s timeout) left.
 */
const racing = {
  env: { ...fast, BING_RETRY_BUDGET: "500ms", BING_TIMEOUT: "2s" },
  fakeOptions: { bing: { latencyMs: 20 } },
  settings: { tokens: { ...testSettings().tokens, leaseDuration: Duration.seconds(4) } }
}

describe("two monitors and the fresh-token endpoint over 500 due connections", () => {
  layer(HarnessLive(racing), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.effect("each connection is refreshed exactly once, with zero invalid_grant and zero lost tokens", () =>
      Effect.gen(function*() {
        const { instance, startAnother, fakes } = yield* Harness
        const bing = fakes.bing
        const users = Array.from({ length: 500 }, (_, i) => `bulk-${i}`)
        yield* within(instance)(seedDueConnections(bing, "bing", users))
        // With the default linger: results of a monitor wait for each other before they are stored.
        const replicas = yield* Effect.all([0, 1].map(() => startAnother(monitorSettings({ batch: 400, concurrency: 2, storeLinger: Duration.millis(20) }))))
        const [one, other] = [replicas[0]!, replicas[1]!]
        const [a, b] = yield* Effect.all([monitorOf(one), monitorOf(other)])
        const refreshesBefore = bing.stats.refreshes
        const invalidBefore = bing.stats.invalidGrants

        const tokenCalls = Effect.forEach(
          Array.from({ length: 100 }, (_, i) => users[(i * 37) % users.length] ?? ""),
          (user, i) => tokenOf(i % 2 === 0 ? one : other, user, "bing"),
          { concurrency: 20 }
        )
        const dueLeft = sql(instance, `select 1 from oauth_connections where user_id like 'bulk-%' and expires_at < now() + interval '10 minutes'`)
        // Each monitor ticks on its own until nothing is due, as replicas do.
        const ticking = (monitor: TokenMonitor) =>
          Effect.gen(function*() {
            const reports: Array<TickReport> = []
            for (let i = 0; i < 200 && (yield* dueLeft).length > 0; i++) {
              reports.push(yield* monitor.tick)
              yield* Effect.sleep("50 millis")
            }
            return reports
          })
        const [reportsA, reportsB, tokens] = yield* Effect.all([ticking(a), ticking(b), tokenCalls], { concurrency: "unbounded" })
        const reports = [...reportsA, ...reportsB]

        expect(bing.stats.invalidGrants - invalidBefore).toBe(0)
        expect(bing.stats.refreshes - refreshesBefore).toBe(500)
        for (const [, count] of bing.stats.refreshesByToken) expect(count).toBe(1)
        expect(reports.reduce((n, r) => n + r.refreshed, 0)).toBeLessThanOrEqual(500)
        expect(reports.every((r) => Object.keys(r.failed).length === 0)).toBe(true)
        expect(reportsA.some((r) => r.refreshed > 0) && reportsB.some((r) => r.refreshed > 0)).toBe(true)
        for (const t of tokens) expect(bing.isLiveAccessToken(t.access_token)).toBe(true)

        // Zero lost tokens: every stored pair is the live one the platform knows.
        const stored = yield* Effect.forEach(users, (u) => storedTokens(instance, u, "bing"), { concurrency: 10 })
        expect(stored.every((t) => bing.isLiveAccessToken(Redacted.value(t.accessToken)))).toBe(true)
        expect(stored.every((t) => Option.isSome(t.refreshToken) && bing.isLiveRefreshToken(Redacted.value(t.refreshToken.value)))).toBe(true)
        expect((yield* Effect.flatMap(monitorOf(instance), (m) => m.tick)).due).toBe(0)
      }).pipe(Effect.scoped), 120_000)
  })
})
