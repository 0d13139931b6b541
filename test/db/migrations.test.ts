import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { migrate } from "../../src/db/migrations.js"
import { EmptyDatabaseLive } from "../support/database.js"

const tables = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ tablename: string }>`select tablename from pg_tables where schemaname = 'public' order by tablename`.pipe(
    Effect.map((rows) => rows.map((r) => r.tablename))
  ))

const indexes = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ indexdef: string }>`select indexdef from pg_indexes where tablename = 'oauth_connections'`.pipe(
    Effect.map((rows) => rows.map((r) => r.indexdef))
  ))

describe("migrations", () => {
  it.live("create the three tables and the indexes of the design", () =>
    Effect.gen(function*() {
      const applied = yield* migrate()
      expect(applied.map(([id]) => id)).toContain(1)
      expect(yield* tables).toEqual(["oauth_connections", "oauth_events", "oauth_states", "schema_migrations"])
      const defs = yield* indexes
      expect(defs.some((d) => /UNIQUE INDEX .* \(user_id, platform, account_id\)/.test(d))).toBe(true)
      expect(defs.some((d) => /\(user_id\)$/.test(d))).toBe(true)
      expect(defs.some((d) => /\(expires_at\) WHERE \(status = 'active'::text\)/.test(d))).toBe(true)
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
      const applied = results.flat().map(([id]) => id)
      expect(new Set(applied).size).toBe(applied.length)
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ n: number }>`select count(*)::int as n from schema_migrations`
      expect(rows[0]?.n).toBe(applied.length)
    }).pipe(Effect.provide(Layer.fresh(EmptyDatabaseLive))))
})
