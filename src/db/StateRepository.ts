import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Schema } from "effect"
import { InvalidState, StateExpired } from "../domain/errors.js"
import { orUnavailable } from "./Database.js"

export const AuthMode = Schema.Literal("redirect", "popup")
export type AuthMode = typeof AuthMode.Type

export const StoredState = Schema.Struct({
  stateHash: Schema.Uint8ArrayFromSelf,
  userId: Schema.String,
  platform: Schema.String,
  codeVerifier: Schema.NullOr(Schema.Uint8ArrayFromSelf),
  keyId: Schema.NullOr(Schema.String),
  redirectUri: Schema.String,
  returnTo: Schema.NullOr(Schema.String),
  mode: AuthMode,
  expiresAt: Schema.DateFromSelf,
  consumedAt: Schema.NullOr(Schema.DateFromSelf),
  createdAt: Schema.DateFromSelf
})
export type StoredState = typeof StoredState.Type

export interface NewState {
  readonly stateHash: Uint8Array
  readonly userId: string
  readonly platform: string
  readonly codeVerifier: { readonly keyId: string; readonly bytes: Uint8Array } | null
  readonly redirectUri: string
  readonly returnTo: string | null
  readonly mode: AuthMode
  readonly expiresAt: Date
}

/**
 * The first key of the advisory lock taken per (user, platform) while storing an authorisation
 * request (the second is a hash of the pair); two-key advisory locks do not share keys with the
 * one-key lock of the migrations.
 */
const PENDING_LOCK_CLASS = 7_264_119

const decodeStates = Schema.decodeUnknown(Schema.Array(StoredState))
const decodeOrigins = Schema.decodeUnknown(Schema.Array(StoredState.pipe(Schema.pick("mode", "returnTo"))))

export class StateRepository extends Effect.Service<StateRepository>()("Integrations/StateRepository", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return {
      /**
       * Stores an authorisation request and drops the oldest live ones (not consumed, not
       * expired) of its user and platform beyond `maxPending`, this one included, so a caller
       * that keeps asking cannot grow the table: a dropped state is unknown at the callback.
       * Two requests for one (user, platform) at once could each count the live ones before
       * the other's insert and both stay; a transaction-scoped advisory lock on the pair
       * serialises them (row locks would not: the pair may have no row to lock yet). The
       * statement after the lock sees every earlier request committed (READ COMMITTED,
       * PostgreSQL's default); its delete sees the rows before its own insert, so it keeps
       * `maxPending - 1` of them and the new one always stays.
       */
      create: (state: NewState, now: Date, maxPending: number) =>
        sql.withTransaction(
          sql`select pg_advisory_xact_lock(${PENDING_LOCK_CLASS}::int, hashtext(${state.platform}::text || ':' || ${state.userId}::text))`.pipe(
            Effect.zipRight(sql`with dropped as (
                delete from oauth_states where state_hash in (
                  select state_hash from oauth_states
                  where user_id = ${state.userId} and platform = ${state.platform} and consumed_at is null and expires_at > ${now}
                  order by created_at desc, state_hash desc
                  offset ${Math.max(maxPending - 1, 0)}
                )
              )
              insert into oauth_states (state_hash, user_id, platform, code_verifier, key_id, redirect_uri, return_to, mode,
                expires_at, created_at)
              values (${state.stateHash}, ${state.userId}, ${state.platform}, ${state.codeVerifier?.bytes ?? null},
                ${state.codeVerifier?.keyId ?? null}, ${state.redirectUri}, ${state.returnTo}, ${state.mode},
                ${state.expiresAt}, ${now})`)
          )
        ).pipe(Effect.asVoid, orUnavailable),

      /**
       * Marks the state used in one statement, so of concurrent callbacks exactly one gets
       * it. An expired state is consumed too (and refused), so it can never be retried. A
       * refused state that is known still reports how its flow began (mode, return_to), so
       * the callback can answer the way the flow expects.
       */
      consume: (stateHash: Uint8Array, now: Date) =>
        Effect.gen(function*() {
          const taken = yield* sql`update oauth_states set consumed_at = ${now}
            where state_hash = ${stateHash} and consumed_at is null
            returning *`.pipe(Effect.flatMap(decodeStates), orUnavailable)
          const state = taken[0]
          if (state === undefined) {
            const known = yield* sql`select mode, return_to from oauth_states where state_hash = ${stateHash}`.pipe(
              Effect.flatMap(decodeOrigins),
              orUnavailable
            )
            const origin = known[0]
            return yield* origin === undefined
              ? new InvalidState({ reason: "unknown" })
              : new InvalidState({ reason: "replayed", mode: origin.mode, returnTo: origin.returnTo })
          }
          if (state.expiresAt.getTime() <= now.getTime()) return yield* new StateExpired({ mode: state.mode, returnTo: state.returnTo })
          return state
        }),

      /**
       * Deletes at most `limit` states expired at `now` (consumed or not), in one statement;
       * gives how many. Rows another process is deleting or consuming are skipped, not waited for.
       */
      deleteExpired: (now: Date, limit: number) =>
        sql<{ readonly n: number }>`with deleted as (
            delete from oauth_states where state_hash in (
              select state_hash from oauth_states where expires_at <= ${now} limit ${limit} for update skip locked
            ) returning 1
          ) select count(*)::int as n from deleted`.pipe(
          Effect.map((rows) => rows[0]?.n ?? 0),
          orUnavailable
        )
    } as const
  })
}) {}
