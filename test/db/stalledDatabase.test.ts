import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Context, Duration, Effect, Exit, Fiber, Layer, Option, Redacted, Schema } from "effect"
import { orUnavailable, pgClientLayer, SILENCE_GRACE } from "../../src/db/Database.js"
import { freshDatabase, testPool } from "../support/database.js"
import { stallingProxy } from "../support/stallingProxy.js"

const STATEMENT_TIMEOUT = Duration.seconds(1)
/** The longest a statement may take to fail: the client gives up after the server's timeout and its grace. */
const BOUND_MS = Duration.toMillis(Duration.sum(STATEMENT_TIMEOUT, SILENCE_GRACE))
/** Generous: the machine is shared, and only a hang or a wait for another bound should fail these tests. */
const MARGIN_MS = 4_000

const pool = { ...testPool, maxConnections: 1, statementTimeout: STATEMENT_TIMEOUT }

/** A client on `url` with `pool`'s settings, built in the test's scope. */
const clientOn = (url: string, settings = pool) =>
  Layer.build(pgClientLayer(Redacted.make(url), settings)).pipe(
    Effect.map((context) => Context.get(context, SqlClient.SqlClient)),
    Effect.orDie
  )

const BackendPid = Schema.Array(Schema.Struct({ pid: Schema.Number }))
const backendPid = (sql: SqlClient.SqlClient) =>
  sql`select pg_backend_pid() as pid`.pipe(Effect.flatMap(Schema.decodeUnknown(BackendPid)), Effect.map((rows) => rows[0]?.pid), orUnavailable)

/** The effect's exit and how long it took; a hang past the bound and the margin fails the test. */
const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const exit = yield* Effect.exit(effect).pipe(
      Effect.timeoutFail({ duration: BOUND_MS + MARGIN_MS, onTimeout: () => new Error("no answer within the bound and the margin") }),
      Effect.orDie
    )
    return { exit, ms: (yield* Clock.currentTimeMillis) - start }
  })

/** The failure's tag; anything else (a success, a defect) as text that fails the assertion. */
const failedWith = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>) =>
  Exit.match(exit, {
    onSuccess: () => "success",
    onFailure: (cause) => Option.match(Cause.failureOption(cause), { onNone: () => Cause.pretty(cause), onSome: (e) => e._tag })
  })

describe("a stalled database", () => {
  it.scopedLive("a statement to a server that does not answer fails with DatabaseUnavailable after the statement timeout", () =>
    Effect.gen(function*() {
      const proxy = yield* stallingProxy(yield* freshDatabase)
      const sql = yield* clientOn(proxy.url)
      yield* backendPid(sql)
      yield* proxy.freeze
      const { exit, ms } = yield* timed(orUnavailable(sql`select 1`))
      yield* proxy.thaw
      expect(failedWith(exit)).toBe("DatabaseUnavailable")
      expect(ms).toBeGreaterThanOrEqual(Duration.toMillis(STATEMENT_TIMEOUT))
      expect(ms).toBeLessThan(BOUND_MS + MARGIN_MS)
    }))

  it.scopedLive("a connection whose statement went unanswered is closed, not handed to the next statement", () =>
    Effect.gen(function*() {
      const proxy = yield* stallingProxy(yield* freshDatabase)
      const sql = yield* clientOn(proxy.url)
      const before = yield* backendPid(sql)
      yield* proxy.freeze
      yield* timed(orUnavailable(sql`select 1`))
      yield* proxy.thaw
      const { exit } = yield* timed(backendPid(sql))
      expect(Exit.isSuccess(exit)).toBe(true)
      if (Exit.isSuccess(exit)) expect(exit.value).not.toBe(before)
    }))

  it.scopedLive("a statement that runs past the statement timeout is cancelled by PostgreSQL, and its connection is kept", () =>
    Effect.gen(function*() {
      const sql = yield* clientOn(yield* freshDatabase)
      const before = yield* backendPid(sql)
      const { exit, ms } = yield* timed(orUnavailable(sql`select pg_sleep(30)`))
      expect(failedWith(exit)).toBe("DatabaseUnavailable")
      expect(ms).toBeLessThan(BOUND_MS + MARGIN_MS)
      expect(yield* backendPid(sql)).toBe(before)
    }))

  it.scopedLive("waiting for a pooled connection ends with DatabaseUnavailable within the statement timeout", () =>
    Effect.gen(function*() {
      const proxy = yield* stallingProxy(yield* freshDatabase)
      // A connect timeout far beyond the margin: only the statement timeout can end the wait in time.
      const sql = yield* clientOn(proxy.url, { ...pool, connectTimeout: Duration.seconds(20) })
      yield* backendPid(sql)
      yield* proxy.freeze
      const holder = yield* Effect.fork(Effect.exit(orUnavailable(sql`select 1`)))
      yield* Effect.sleep("100 millis")
      const { exit, ms } = yield* timed(orUnavailable(sql`select 2`))
      yield* proxy.thaw
      yield* Fiber.join(holder)
      expect(failedWith(exit)).toBe("DatabaseUnavailable")
      expect(ms).toBeLessThan(BOUND_MS + MARGIN_MS)
    }))

  it.scopedLive("a transaction whose statement goes unanswered fails with DatabaseUnavailable, and the pool serves the next statement outside it", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const proxy = yield* stallingProxy(url)
      const sql = yield* clientOn(proxy.url)
      const direct = yield* clientOn(url)
      yield* sql`create table marks (label text not null)`.pipe(orUnavailable)
      const transaction = sql.withTransaction(
        sql`insert into marks values ('in the transaction')`.pipe(
          Effect.zipRight(proxy.freeze),
          Effect.zipRight(sql`select 1`)
        )
      )
      const { exit, ms } = yield* timed(orUnavailable(transaction))
      yield* proxy.thaw
      expect(failedWith(exit)).toBe("DatabaseUnavailable")
      expect(ms).toBeLessThan(BOUND_MS + MARGIN_MS)
      // Committed at once, seen from another connection: the statement ran in no transaction.
      yield* sql`insert into marks values ('after')`.pipe(orUnavailable)
      const Labels = Schema.Array(Schema.Struct({ label: Schema.String }))
      const labels = yield* direct`select label from marks`.pipe(Effect.flatMap(Schema.decodeUnknown(Labels)), orUnavailable)
      expect(labels.map((row) => row.label)).toEqual(["after"])
    }))

  it.scopedLive("the first connection at start may take the connect timeout, longer than a statement may", () =>
    Effect.gen(function*() {
      const proxy = yield* stallingProxy(yield* freshDatabase)
      yield* proxy.freeze
      const starting = yield* Effect.fork(clientOn(proxy.url, { ...pool, connectTimeout: Duration.seconds(10) }))
      yield* Effect.sleep(Duration.times(STATEMENT_TIMEOUT, 2))
      yield* proxy.thaw
      const sql = yield* Fiber.join(starting)
      expect(yield* backendPid(sql)).toEqual(expect.any(Number))
    }))

  it.scopedLive("a client without a statement timeout (the migrations') sets none on the server", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const Setting = Schema.Array(Schema.Struct({ statementTimeout: Schema.String }))
      const show = (sql: SqlClient.SqlClient) =>
        sql`show statement_timeout`.pipe(Effect.flatMap(Schema.decodeUnknown(Setting)), Effect.map((rows) => rows[0]?.statementTimeout), orUnavailable)
      expect(yield* show(yield* clientOn(url))).toBe("1s")
      expect(yield* show(yield* clientOn(url, { ...pool, statementTimeout: Duration.infinity }))).toBe("0")
    }))
})
