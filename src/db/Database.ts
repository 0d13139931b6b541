import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Layer, Option, type ParseResult, String as Str } from "effect"
import { AppConfig, ConfigInvalid, type PoolSettings } from "../config/AppConfig.js"
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
    if ("cause" in cause && cause.cause !== undefined && cause.cause !== cause) return describeCause(cause.cause)
    if (code !== undefined) return `error ${code}`
    if (cause instanceof Error && /timed? ?out/i.test(cause.message)) return "timed out"
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

export const pgClientLayer = (url: PgClient.PgClientConfig["url"], pool: PoolSettings) =>
  PgClient.layer({
    url,
    maxConnections: pool.maxConnections,
    connectTimeout: pool.connectTimeout,
    idleTimeout: pool.idleTimeout,
    connectionTTL: pool.connectionTtl,
    applicationName: "oauth-integrations",
    transformQueryNames: rememberNames(Str.camelToSnake),
    transformResultNames: rememberNames(Str.snakeToCamel),
    transformJson: false
  })

/** PostgreSQL from DATABASE_URL, or the embedded server when it is unset. */
export const PgLive = Layer.unwrapScoped(
  Effect.gen(function*() {
    const { database } = yield* AppConfig
    const variable = Option.isSome(database.url) ? "DATABASE_URL" : "EMBEDDED_DATABASE_DIR"
    const url = Option.isSome(database.url) ? database.url.value : yield* startEmbeddedPostgres(database.embeddedDir)
    return pgClientLayer(url, database.pool).pipe(
      Layer.mapError((e) => new ConfigInvalid({ problems: [`${variable}: cannot connect to PostgreSQL (${describeCause(e.cause)})`] }))
    )
  })
)

export const MigrationsLive = Layer.effectDiscard(
  migrate().pipe(
    Effect.tap((applied) => applied.length > 0 ? Effect.logInfo(`applied migrations: ${applied.map(([id, name]) => `${id}_${name}`).join(", ")}`) : Effect.void),
    Effect.mapError((e) => new ConfigInvalid({ problems: [`migrations: ${e._tag === "MigrationError" ? e.message : describeCause(e.cause)}`] }))
  )
)

/** The pool with migrations applied. */
export const DatabaseLive = MigrationsLive.pipe(Layer.provideMerge(PgLive))

/**
 * Repositories' failures: an unreachable or refusing database is a typed, retryable
 * DatabaseUnavailable (its cause is logged, never returned); a row that does not decode is a bug.
 */
export const orUnavailable = <A, R>(
  effect: Effect.Effect<A, SqlError.SqlError | ParseResult.ParseError, R>
): Effect.Effect<A, DatabaseUnavailable, R> =>
  effect.pipe(
    Effect.catchTags({
      SqlError: (e) =>
        Effect.logWarning("database statement failed", describeCause(e.cause)).pipe(
          Effect.zipRight(Effect.fail(new DatabaseUnavailable({ message: "The database is unavailable; retry later" })))
        ),
      ParseError: (e) => Effect.die(e)
    })
  )

/** Answers when the database does, within the timeout. */
export const ping = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* orUnavailable(sql`select 1`)
}).pipe(
  Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => new DatabaseUnavailable({ message: "The database did not answer in time" }) })
)
