import { Socket } from "node:net"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Duration, Effect, Layer, Option, type ParseResult, Redacted, String as Str } from "effect"
import Pg from "pg"
import { AppConfig } from "../config/AppConfig.js"
import { ConfigInvalid } from "../config/ConfigInvalid.js"
import type { PoolSettings } from "../config/Settings.js"
import { DatabaseUnavailable } from "../domain/errors.js"
import { startEmbeddedPostgres } from "./embedded.js"
import { migrate } from "./migrations.js"

const reasons: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host not found",
  ETIMEDOUT: "timed out",
  ECONNRESET: "connection reset",
  "28P01": "password authentication failed",
  "28000": "authentication refused",
  "3D000": "database does not exist"
}

/** One line for an error from node-postgres, without the URL or its password. */
export const describeCause = (cause: unknown): string => {
  if (typeof cause === "object" && cause !== null) {
    const code = "code" in cause && typeof cause.code === "string" ? cause.code : undefined
    if (code !== undefined && reasons[code] !== undefined) return reasons[code]
    if ("errors" in cause && Array.isArray(cause.errors) && cause.errors.length > 0) return describeCause(cause.errors[0])
    // Before its cause: node-postgres wraps the "terminated" of a connection it gave up on.
    if (code === undefined && cause instanceof Error && /timed? ?out/i.test(cause.message)) return "timed out"
    if ("cause" in cause && cause.cause !== undefined && cause.cause !== cause) return describeCause(cause.cause)
    if (code !== undefined) return `error ${code}`
  }
  return "unreachable"
}

/**
 * A name transform that computes each name once: the client renames every column of every
 * row it reads, and the names are few (at most `limit` are kept; others are computed anew).
 */
export const rememberNames = (transform: (name: string) => string, limit = 1024) => {
  const known = new Map<string, string>()
  return (name: string): string => {
    const found = known.get(name)
    if (found !== undefined) return found
    const renamed = transform(name)
    if (known.size < limit) known.set(name, renamed)
    return renamed
  }
}

/**
 * How much longer than PostgreSQL's own statement_timeout a checked-out connection may stay
 * silent: a live server cancels a slow statement itself and its answer arrives within this,
 * keeping the connection.
 */
export const SILENCE_GRACE = Duration.millis(500)

/** Nothing came back on a checked-out connection for the statement timeout and its grace. */
export class StatementTimedOut extends Error {
  constructor(readonly silentMs: number) {
    super(`PostgreSQL sent nothing for ${silentMs} ms: statement timed out, connection closed`)
  }
}

const poolConfig = (url: Redacted.Redacted, pool: PoolSettings): Pg.PoolConfig => ({
  connectionString: Redacted.value(url),
  application_name: "oauth-integrations",
  max: pool.maxConnections,
  idleTimeoutMillis: Duration.toMillis(pool.idleTimeout),
  maxLifetimeSeconds: Duration.toSeconds(pool.connectionTtl),
  // Waiting for a free connection, and opening a new one: a request must not wait on the pool
  // longer than on a statement.
  connectionTimeoutMillis: Duration.toMillis(Duration.min(pool.connectTimeout, pool.statementTimeout)),
  ...(Duration.isFinite(pool.statementTimeout) ? { statement_timeout: Duration.toMillis(pool.statementTimeout) } : {})
})

/**
 * The pool. PostgreSQL cancels a statement that runs past the statement timeout and the
 * connection stays usable; a server that does not answer at all (stopped, unreachable behind a
 * silent network) cancels nothing, so a checked-out connection on which nothing has moved for
 * `silence` is destroyed: its statement fails at once, a transaction on it can only fail, and
 * the pool drops it instead of handing it to the next caller with the query still on it.
 * (Interrupting a @effect/sql-pg statement would wait for pg_cancel_backend on another
 * connection, up to 5 s, then put the connection back with its query outstanding.)
 */
const makePool = (config: Pg.PoolConfig, silence: Option.Option<Duration.Duration>) => {
  const pool = new Pg.Pool(config)
  // An idle connection that fails is dropped by the pool; unheard, the error would end the process.
  pool.on("error", () => {})
  if (Option.isSome(silence)) {
    const ms = Duration.toMillis(silence.value)
    const socketOf = (client: Pg.PoolClient) => (client.connection.stream instanceof Socket ? client.connection.stream : undefined)
    pool.on("connect", (client) => {
      const socket = socketOf(client)
      socket?.on("timeout", () => socket.destroy(new StatementTimedOut(ms)))
    })
    pool.on("acquire", (client) => socketOf(client)?.setTimeout(ms))
    pool.on("release", (_error, client) => socketOf(client)?.setTimeout(0))
  }
  return pool
}

/**
 * The first connection, at start, may take the whole DB_CONNECT_TIMEOUT (a server still
 * starting, a slow network) where later ones may not: it is opened on its own, then closed.
 */
const firstConnection = (config: Pg.PoolConfig, timeout: Duration.Duration) =>
  Effect.acquireUseRelease(
    Effect.tryPromise({
      try: async () => {
        const client = new Pg.Client({ ...config, connectionTimeoutMillis: Duration.toMillis(timeout) })
        client.on("error", () => {})
        await client.connect()
        return client
      },
      catch: (cause) => new SqlError({ cause, message: "PgClient: Failed to connect" })
    }),
    (client) =>
      Effect.tryPromise({
        try: () => client.query("select 1"),
        catch: (cause) => new SqlError({ cause, message: "PgClient: Failed to connect" })
      }),
    // With a statement still running, node-postgres destroys the socket rather than wait.
    (client) => Effect.promise(() => client.end().catch(() => undefined))
  ).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => new SqlError({ cause: new Error("Connection timed out"), message: "PgClient: Connection timed out" })
    })
  )

/**
 * A client on `url` whose every statement is bounded by `pool.statementTimeout`: PostgreSQL's
 * statement_timeout, and a checked-out connection silent for that plus SILENCE_GRACE is closed
 * (the statement fails with a SqlError, which repositories turn into DatabaseUnavailable).
 * Waiting for a connection is bounded by the smaller of the connect and statement timeouts;
 * the first connection at start by the connect timeout alone. `Duration.infinity` leaves
 * statements unbounded (migrations).
 */
export const pgClientLayer = (url: Redacted.Redacted, pool: PoolSettings) =>
  PgClient.layerFromPool({
    acquire: Effect.gen(function*() {
      const config = poolConfig(url, pool)
      yield* firstConnection(config, pool.connectTimeout)
      const silence = Duration.isFinite(pool.statementTimeout)
        ? Option.some(Duration.sum(pool.statementTimeout, SILENCE_GRACE))
        : Option.none()
      return yield* Effect.acquireRelease(
        Effect.sync(() => makePool(config, silence)),
        // A connection still checked out keeps end() waiting: give up after a second, as @effect/sql-pg does.
        (created) => Effect.promise(() => created.end()).pipe(Effect.interruptible, Effect.timeoutOption("1 second"))
      )
    }),
    transformQueryNames: rememberNames(Str.camelToSnake),
    transformResultNames: rememberNames(Str.snakeToCamel),
    transformJson: false
  })

/** The database's URL (DATABASE_URL, or the embedded server's when it is unset) and the variable a problem names. */
const target = Effect.gen(function*() {
  const { database } = yield* AppConfig
  const variable = Option.isSome(database.url) ? "DATABASE_URL" : "EMBEDDED_DATABASE_DIR"
  const url = Option.isSome(database.url) ? database.url.value : yield* startEmbeddedPostgres(database.embeddedDir, { relocatable: database.embeddedDirIsDefault })
  return { url, variable, pool: database.pool }
})

const cannotConnect = (variable: string) => (e: SqlError) =>
  new ConfigInvalid({ problems: [`${variable}: cannot connect to PostgreSQL (${describeCause(e.cause)})`] })

/** PostgreSQL from DATABASE_URL, or the embedded server when it is unset. */
export const PgLive = Layer.unwrapScoped(
  Effect.map(target, ({ pool, url, variable }) => pgClientLayer(url, pool).pipe(Layer.mapError(cannotConnect(variable))))
)

const applyMigrations = migrate().pipe(
  Effect.tap((applied) => applied.length > 0 ? Effect.logInfo(`applied migrations: ${applied.map(([id, name]) => `${id}_${name}`).join(", ")}`) : Effect.void),
  Effect.mapError((e) => new ConfigInvalid({ problems: [`migrations: ${e._tag === "MigrationError" ? e.message : describeCause(e.cause)}`] }))
)

export const MigrationsLive = Layer.effectDiscard(applyMigrations)

/**
 * The pool with migrations applied. Migrations run on a connection of their own, closed when
 * they are done, without the statement timeout: one may take longer than a request may wait
 * (an index built on a large table), and so may waiting for another process's migrations.
 */
export const DatabaseLive = Layer.unwrapScoped(
  Effect.map(target, ({ pool, url, variable }) => {
    const unbounded = pgClientLayer(url, { ...pool, maxConnections: 1, statementTimeout: Duration.infinity })
    return Layer.effectDiscard(Effect.provide(applyMigrations, Layer.mapError(unbounded, cannotConnect(variable)))).pipe(
      Layer.provideMerge(pgClientLayer(url, pool).pipe(Layer.mapError(cannotConnect(variable))))
    )
  })
)

const unavailable = (e: SqlError) =>
  // The reason as an annotation: a second message would print a second `message` key.
  Effect.logWarning("database statement failed").pipe(
    Effect.annotateLogs("error", describeCause(e.cause)),
    Effect.zipRight(Effect.fail(new DatabaseUnavailable({ message: "The database is unavailable; retry later" })))
  )

/**
 * Repositories' failures: an unreachable or refusing database is a typed, retryable
 * DatabaseUnavailable (its cause is logged, never returned); a row that does not decode is a bug.
 * `withTransaction` makes a failed COMMIT or ROLLBACK a defect, though it is the same lost
 * database (a connection closed by the statement timeout refuses the ROLLBACK): it is one too.
 */
export const orUnavailable = <A, R>(
  effect: Effect.Effect<A, SqlError | ParseResult.ParseError, R>
): Effect.Effect<A, DatabaseUnavailable, R> =>
  effect.pipe(
    Effect.catchTags({ SqlError: unavailable, ParseError: (e) => Effect.die(e) }),
    Effect.catchSomeDefect((defect) => (defect instanceof SqlError ? Option.some(unavailable(defect)) : Option.none()))
  )

/**
 * `effect` in one transaction, whose statements' failures are already typed (repositories'
 * DatabaseUnavailable); a failed BEGIN, COMMIT or ROLLBACK is DatabaseUnavailable too.
 */
export const inTransaction = <A, E, R>(sql: SqlClient.SqlClient, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | DatabaseUnavailable, R> =>
  sql.withTransaction(effect).pipe(
    Effect.catchIf((e): e is SqlError => e instanceof SqlError, unavailable),
    Effect.catchSomeDefect((defect) => (defect instanceof SqlError ? Option.some(unavailable(defect)) : Option.none()))
  )

/** Answers when the database does, within the timeout. */
export const ping = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* orUnavailable(sql`select 1`)
}).pipe(
  // Answered at the timeout; the interrupted statement's cancellation goes on in the background.
  Effect.disconnect,
  Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => new DatabaseUnavailable({ message: "The database did not answer in time" }) })
)
