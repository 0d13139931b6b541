import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Option, Schema } from "effect"
import { orUnavailable } from "./Database.js"

/** A connect session as stored: never its secret, only the secret's SHA-256. */
export const StoredSession = Schema.Struct({
  id: Schema.String,
  userId: Schema.String,
  platforms: Schema.Array(Schema.String),
  returnTo: Schema.NullOr(Schema.String),
  allowDisconnect: Schema.Boolean,
  expiresAt: Schema.DateFromSelf,
  createdAt: Schema.DateFromSelf
})
export type StoredSession = typeof StoredSession.Type
const decodeSessions = Schema.decodeUnknown(Schema.Array(StoredSession))

const columns = "id, user_id, platforms, return_to, allow_disconnect, expires_at, created_at"

export class ConnectSessionRepository extends Effect.Service<ConnectSessionRepository>()("Integrations/ConnectSessionRepository", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return {
      create: (session: StoredSession, secretHash: Uint8Array) =>
        sql`insert into connect_sessions (id, secret_hash, user_id, platforms, return_to, allow_disconnect, expires_at, created_at)
          values (${session.id}, ${secretHash}, ${session.userId}, ${session.platforms}::text[], ${session.returnTo},
            ${session.allowDisconnect}, ${session.expiresAt}, ${session.createdAt})`.pipe(Effect.asVoid, orUnavailable),

      /** The session whose secret hashes to `secretHash`, expired or not (the caller tells them apart). */
      findBySecretHash: (secretHash: Uint8Array) =>
        sql`select ${sql.literal(columns)} from connect_sessions where secret_hash = ${secretHash}`.pipe(
          Effect.flatMap(decodeSessions),
          Effect.map((rows) => Option.fromNullable(rows[0])),
          orUnavailable
        ),

      /** Deletes at most `limit` sessions that expired before `before`; gives how many. */
      deleteExpired: (before: Date, limit: number) =>
        sql<{ readonly n: number }>`with deleted as (
            delete from connect_sessions where id in (
              select id from connect_sessions where expires_at < ${before} limit ${limit} for update skip locked
            ) returning 1
          ) select count(*)::int as n from deleted`.pipe(Effect.map((rows) => rows[0]?.n ?? 0), orUnavailable)
    } as const
  })
}) {}
