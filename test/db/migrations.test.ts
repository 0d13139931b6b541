import { readdirSync } from "node:fs"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { migrate, migrationsDirectory } from "../../src/db/migrations.js"
import { EmptyDatabaseLive } from "../support/database.js"

/** The ids of the files in migrations/ (1 and 2 today), read here independently of the loader. */
const migrationIds = readdirSync(migrationsDirectory)
  .flatMap((file) => /^(\d{4})_.+\.sql$/.exec(file)?.[1] ?? [])
  .map(Number)
  .sort((a, b) => a - b)

const tables = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ tablename: string }>`select tablename from pg_tables where schemaname = 'public' order by tablename`.pipe(
    Effect.map((rows) => rows.map((r) => r.tablename))
  ))

const indexes = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ indexdef: string }>`select indexdef from pg_indexes where tablename in ('oauth_connections', 'webhook_deliveries')`.pipe(
    Effect.map((rows) => rows.map((r) => r.indexdef))
  ))

describe("migrations", () => {
  it.live("create the tables and the indexes of the design", () =>
    Effect.gen(function*() {
      const applied = yield* migrate()
      expect(applied.map(([id]) => id)).toContain(1)
      expect(yield* tables).toEqual([
        "connect_sessions",
        "monitor_passes",
        "oauth_connections",
        "oauth_events",
        "oauth_pending_grants",
        "oauth_states",
        "schema_migrations",
        "webhook_deliveries",
        "webhook_endpoints"
      ])
      const defs = yield* indexes
      expect(defs.some((d) => /UNIQUE INDEX .* \(user_id, platform, account_id\)/.test(d))).toBe(true)
      expect(defs.some((d) => /\(user_id\)$/.test(d))).toBe(true)
      expect(defs.some((d) => /\(expires_at\) WHERE \(status = 'active'::text\)/.test(d))).toBe(true)
      // The delivery workers' claim.
      expect(defs.some((d) => /webhook_deliveries USING btree \(endpoint, next_attempt_at, id\) WHERE \(status = 'pending'::text\)/.test(d))).toBe(true)
    }).pipe(Effect.provide(Layer.fresh(EmptyDatabaseLive))))

  it.live("running them again is a no-op", () =>
    Effect.gen(function*() {
      const first = yield* migrate()
      const second = yield* migrate()
      expect(first.length).toBeGreaterThan(0)
      expect(second).toEqual([])
    }).pipe(Effect.provide(Layer.fresh(EmptyDatabaseLive))))

  it.live("five processes migrating an empty database at once apply each migration exactly once", () =>
    Effect.gen(function*() {
      const results = yield* Effect.all(Array.from({ length: 5 }, () => migrate()), { concurrency: "unbounded" })
      const applied = results.flat().map(([id]) => id).sort((a, b) => a - b)
      expect(applied).toEqual(migrationIds)
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ migrationId: number }>`select migration_id from schema_migrations order by migration_id`
      expect(rows.map((r) => r.migrationId)).toEqual(migrationIds)
    }).pipe(Effect.provide(Layer.fresh(EmptyDatabaseLive))))
})
