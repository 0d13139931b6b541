import type * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Redacted, Schema, Stream } from "effect"
import Pg from "pg"

export class ListenLost extends Schema.TaggedError<ListenLost>()("ListenLost", { message: Schema.String }) {}

/**
 * LISTEN on a connection of its own, outside the pool: the pool's listen client ignores
 * errors and keeps a dead connection, which would stop notifications for good. Here a
 * connection that errors or ends fails the stream, and the caller listens again.
 */
export const listen = (config: PgClient.PgClientConfig, channel: string, onListening: Effect.Effect<void>) =>
  Stream.asyncPush<string, ListenLost>((emit) =>
    Effect.gen(function*() {
      const client = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            const client = new Pg.Client({
              connectionString: config.url === undefined ? undefined : Redacted.value(config.url),
              host: config.host,
              port: config.port,
              database: config.database,
              user: config.username,
              password: config.password === undefined ? undefined : Redacted.value(config.password),
              ssl: config.ssl,
              application_name: "oauth-integrations-listen",
              connectionTimeoutMillis: 10_000,
              keepAlive: true,
              keepAliveInitialDelayMillis: 10_000
            })
            // An error before the listeners below are attached must not crash the process.
            client.on("error", () => {})
            await client.connect()
            return client
          },
          catch: () => new ListenLost({ message: "cannot connect" })
        }),
        (client) => Effect.promise(() => client.end().catch(() => undefined)).pipe(Effect.timeoutOption("1 second"))
      )
      client.on("error", () => emit.fail(new ListenLost({ message: "connection error" })))
      client.on("end", () => emit.fail(new ListenLost({ message: "connection ended" })))
      client.on("notification", (message) => {
        if (message.channel === channel && message.payload !== undefined) emit.single(message.payload)
      })
      yield* Effect.tryPromise({
        try: () => client.query(`LISTEN ${Pg.escapeIdentifier(channel)}`),
        catch: () => new ListenLost({ message: "LISTEN failed" })
      })
      yield* onListening
    }), { bufferSize: "unbounded" })

