import { randomBytes } from "node:crypto"
import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Layer, Redacted } from "effect"
import pg from "pg"
import { inject } from "vitest"
import { pgClientLayer } from "../../src/db/Database.js"
import { migrate } from "../../src/db/migrations.js"

export const testPool = {
  maxConnections: 10,
  connectTimeout: Duration.seconds(10),
  idleTimeout: Duration.seconds(30),
  connectionTtl: Duration.hours(1),
  statementTimeout: Duration.seconds(30)
}

/** The server the tests run against: DATABASE_URL, or the run's embedded PostgreSQL. */
export const adminUrl = (): string => inject("adminDatabaseUrl")

const urlFor = (database: string) => {
  const url = new URL(adminUrl())
  url.pathname = `/${database}`
  return url.toString()
}

/** A new database on the test server, dropped (with its connections) when the scope closes; returns its URL. */
export const freshDatabase = Effect.gen(function*() {
  const name = `oi_test_${randomBytes(6).toString("hex")}`
  const admin = yield* PgClient.make({ url: Redacted.make(adminUrl()), maxConnections: 1 }).pipe(
    Effect.provide(Reactivity.layer)
  )
  yield* admin.unsafe(`create database ${name}`)
  yield* Effect.addFinalizer(() => admin.unsafe(`drop database if exists ${name} with (force)`).pipe(Effect.ignore))
  return urlFor(name)
})

/** A pool on a fresh database, without migrations. */
export const EmptyDatabaseLive = Layer.unwrapScoped(
  Effect.map(freshDatabase, (url) => pgClientLayer(Redacted.make(url), testPool))
)

/** A pool on a fresh database with every migration applied: what each storage test file starts from. */
export const TestDatabaseLive = Layer.effectDiscard(migrate()).pipe(Layer.provideMerge(EmptyDatabaseLive))

/** What `select 1` gives on the server at `url`, over a connection of its own. */
export const answers = (url: Redacted.Redacted) =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: Redacted.value(url) })
    await client.connect()
    const { rows } = await client.query<{ one: number }>("select 1 as one")
    await client.end()
    return rows[0]?.one
  })
