import * as SqlClient from "@effect/sql/SqlClient"
import type { Fragment } from "@effect/sql/Statement"
import { Effect, Either, Option, Redacted, Schema } from "effect"
import { connectionContext, type Sealed, TokenCipher } from "../crypto/TokenCipher.js"
import {
  Connection,
  type ConnectionIdentity,
  type IssuedTokens,
  type TokenSet
} from "../domain/Connection.js"
import { ConnectionUnreadable, type DatabaseUnavailable } from "../domain/errors.js"
import { orUnavailable } from "./Database.js"
import { insertEventsForChanged, insertOwnEventsForChanged, type OutcomeEvent } from "./EventRepository.js"

export interface NewConnection extends ConnectionIdentity {
  readonly tokens: IssuedTokens
  readonly providerData: Record<string, unknown>
}

/** The outcome of a refresh to store; a refresh token only when the platform rotated it. */
export interface RefreshedTokens extends IssuedTokens {
  /** The refresh token that was presented, re-sealed when the row's key is not the current one. */
  readonly previousRefreshToken: Option.Option<Redacted.Redacted<string>>
}

/**
 * How an outcome is written: only while `owner` holds the row's lease and the row is active
 * (a connection disconnected, revoked or taken over meanwhile is left alone), together with
 * its events, in one statement.
 */
/** A refresh's result to store with its outcome. */
export interface RefreshToStore {
  readonly connection: Connection
  readonly tokens: RefreshedTokens
  readonly outcome: Outcome
}

export interface Outcome {
  readonly owner: string
  readonly events: ReadonlyArray<OutcomeEvent>
  readonly now: Date
}

const decodeConnections = Schema.decodeUnknown(Schema.Array(Connection))
const TokenRow = Schema.Struct({
  keyId: Schema.NullOr(Schema.String),
  accessToken: Schema.NullOr(Schema.Uint8ArrayFromSelf),
  refreshToken: Schema.NullOr(Schema.Uint8ArrayFromSelf)
})
const decodeTokenRows = Schema.decodeUnknown(Schema.Array(TokenRow))
export type SealedTokens = typeof TokenRow.Type

const ClaimedRow = Schema.Struct({
  ...Connection.fields,
  sealedAccessToken: Schema.NullOr(Schema.Uint8ArrayFromSelf),
  sealedRefreshToken: Schema.NullOr(Schema.Uint8ArrayFromSelf)
})
const decodeClaimed = Schema.decodeUnknown(Schema.Array(ClaimedRow))

/** A row the monitor holds the lease of, with its ciphertexts. */
export interface Claimed {
  readonly connection: Connection
  readonly sealed: SealedTokens
}

const columnNames = [
  "id", "user_id", "platform", "account_id", "status", "key_id", "token_type", "scope", "expires_at", "provider_data",
  "refresh_failures", "last_refresh_error", "last_refreshed_at", "next_attempt_at", "lease_until", "invalid_grant_streak",
  "last_validated_at", "expiry_warned_at", "created_at", "updated_at"
]
/** The columns of a Connection, optionally qualified by a table alias (for UPDATE ... FROM). */
const columnsOf = (alias: string) => {
  const q = alias === "" ? "" : `${alias}.`
  return [...columnNames.map((c) => `${q}${c}`), `(${q}refresh_token is not null) as has_refresh_token`].join(", ")
}

/**
 * The monitor's claim, one statement: active connections with a refresh token that expire
 * before `horizon`, sealed under one of `keyIds` (a row under a key this process lacks is
 * left for one that has it, or for this one restarted with it), not waiting for a retry,
 * not leased (nor held earlier by this pass), locked with SKIP LOCKED so concurrent monitors
 * take disjoint rows, and leased to `owner`. Exported so the benchmark can EXPLAIN the very
 * statement the monitor runs.
 */
export const claimDueRefreshesStatement = (
  sql: SqlClient.SqlClient,
  claim: {
    readonly owner: string
    readonly now: Date
    readonly horizon: Date
    readonly leaseUntil: Date
    readonly limit: number
    readonly keyIds: ReadonlyArray<string>
  }
) =>
  sql`with due as (
      select id from oauth_connections
      where status = 'active' and expires_at < ${claim.horizon} and refresh_token is not null
        and key_id = any(${claim.keyIds})
        and (next_attempt_at is null or next_attempt_at <= ${claim.now})
        and (lease_until is null or lease_until <= ${claim.now})
        and lease_owner is distinct from ${claim.owner}
      order by expires_at
      limit ${claim.limit}
      for update skip locked
    )
    update oauth_connections c set lease_until = ${claim.leaseUntil}, lease_owner = ${claim.owner}
    from due where c.id = due.id
    returning ${sql.literal(columnsOf("c"))}, c.access_token as sealed_access_token, c.refresh_token as sealed_refresh_token`

const KeyUse = Schema.Struct({ keyId: Schema.String, connections: Schema.Number })
const decodeKeyUse = Schema.decodeUnknown(Schema.Array(KeyUse))

/**
 * How many stored connections each key id seals (rows holding a ciphertext), ordered by key
 * id: what the start compares with TOKEN_ENCRYPTION_KEYS. One scan of the table.
 */
export const connectionsByKeyId = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`select key_id, count(*)::int as connections from oauth_connections
    where key_id is not null and (access_token is not null or refresh_token is not null)
    group by key_id order by key_id`.pipe(Effect.flatMap(decodeKeyUse), orUnavailable))

/** A refresh's result as the store statement takes it (ciphertexts made, events as JSON). */
export interface RefreshRow {
  readonly id: string
  readonly owner: string
  readonly access: Buffer
  readonly keyId: string
  readonly refresh: Buffer | null
  /** The refresh token column: the one given, the one stored, or none. */
  readonly mode: "set" | "keep" | "drop"
  readonly tokenType: string | null
  readonly scope: string | null
  readonly expiresAt: Date | null
  readonly at: Date
  readonly events: string
}

/**
 * Stores refreshes' results and releases their leases, all in one statement with their
 * events, for the rows `owner` still leases and that are still active; gives the ids of
 * those it stored. Exported so that the benchmark's baseline runs the very statement.
 */
export const storeRefreshesStatement = (sql: SqlClient.SqlClient, rows: ReadonlyArray<RefreshRow>) => {
  const column = <A>(f: (row: RefreshRow) => A) => rows.map(f)
  return sql<{ readonly id: string }>`with input as (
      select * from unnest(${column((r) => r.id)}::uuid[], ${column((r) => r.owner)}::text[],
        ${column((r) => r.access)}::bytea[], ${column((r) => r.keyId)}::text[], ${column((r) => r.refresh)}::bytea[],
        ${column((r) => r.mode)}::text[], ${column((r) => r.tokenType)}::text[], ${column((r) => r.scope)}::text[],
        ${column((r) => r.expiresAt)}::timestamptz[], ${column((r) => r.at)}::timestamptz[], ${column((r) => r.events)}::jsonb[])
        as i(id, owner, access, key_id, refresh, mode, token_type, scope, expires_at, at, events)
    ), changed as (
      update oauth_connections c set access_token = i.access, key_id = i.key_id,
        refresh_token = case i.mode when 'set' then i.refresh when 'keep' then c.refresh_token else null end,
        token_type = coalesce(i.token_type, c.token_type), scope = coalesce(i.scope, c.scope),
        expires_at = i.expires_at, refresh_failures = 0, last_refresh_error = null, last_refreshed_at = i.at,
        next_attempt_at = null, invalid_grant_streak = 0, expiry_warned_at = null,
        lease_until = null, lease_owner = null, updated_at = i.at
      from input i
      where c.id = i.id and c.status = 'active' and c.lease_owner = i.owner
      returning c.id, c.user_id, c.platform, i.at as event_at, i.events as outcome_events
    ), logged as (${insertOwnEventsForChanged(sql)})
    select id from changed`
}

/**
 * The row as the store statement leaves it: the columns it sets, over the row as it was
 * under the lease (nothing else changes a leased row: whoever does takes the lease, and the
 * statement then stores nothing). Saves reading every column back.
 */
const afterRefresh = (row: Connection, stored: RefreshRow): Connection => ({
  ...row,
  keyId: stored.keyId,
  hasRefreshToken: stored.mode === "set" || (stored.mode === "keep" && row.hasRefreshToken),
  tokenType: stored.tokenType ?? row.tokenType,
  scope: stored.scope ?? row.scope,
  expiresAt: stored.expiresAt,
  refreshFailures: 0,
  lastRefreshError: null,
  lastRefreshedAt: stored.at,
  nextAttemptAt: null,
  invalidGrantStreak: 0,
  expiryWarnedAt: null,
  leaseUntil: null,
  updatedAt: stored.at
})

export class ConnectionRepository extends Effect.Service<ConnectionRepository>()("Integrations/ConnectionRepository", {
  dependencies: [TokenCipher.Default],
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const cipher = yield* TokenCipher
    const select = sql.literal(columnsOf(""))
    const selectClaimed = sql.literal(columnsOf("c"))

    const many = <E, R>(rows: Effect.Effect<ReadonlyArray<unknown>, E, R>) => Effect.flatMap(rows, decodeConnections)
    const one = <E, R>(rows: Effect.Effect<ReadonlyArray<unknown>, E, R>) =>
      Effect.map(many(rows), (found) => Option.fromNullable(found[0]))
    const exactlyOne = <E, R>(rows: Effect.Effect<ReadonlyArray<unknown>, E, R>) =>
      Effect.flatMap(many(rows), (found) => found[0] === undefined ? Effect.dieMessage("statement returned no row") : Effect.succeed(found[0]))

    const seal = (identity: ConnectionIdentity, field: "access_token" | "refresh_token", token: Redacted.Redacted<string>) =>
      cipher.seal(token, connectionContext(identity, field))

    /**
     * The refresh token to store beside a new access token: the rotated one when given;
     * otherwise the stored one, re-sealed under the current key if it was sealed under
     * another (one key id per row). Must run inside the transaction that holds the row.
     */
    const refreshTokenToKeep = (identity: ConnectionIdentity, given: Option.Option<Redacted.Redacted<string>>) =>
      Effect.gen(function*() {
        if (Option.isSome(given)) return yield* Effect.map(seal(identity, "refresh_token", given.value), (s) => s.bytes)
        const rows = yield* sql`select key_id, access_token, refresh_token from oauth_connections
          where user_id = ${identity.userId} and platform = ${identity.platform} and account_id = ${identity.accountId}
          for update`.pipe(Effect.flatMap(decodeTokenRows))
        const row = rows[0]
        if (row === undefined || row.refreshToken === null || row.keyId === null) return null
        if (row.keyId === cipher.currentKeyId) return row.refreshToken
        const context = connectionContext(identity, "refresh_token")
        return yield* cipher.open({ keyId: row.keyId, bytes: row.refreshToken }, context).pipe(
          Effect.flatMap((plain) => cipher.seal(plain, context)),
          Effect.map((s) => s.bytes),
          // An unreadable old refresh token is dropped rather than kept unreadable beside a readable access token.
          Effect.orElseSucceed(() => null)
        )
      })

    const upsert = (input: NewConnection, now: Date) =>
      sql.withTransaction(
        Effect.gen(function*() {
          const access: Sealed = yield* seal(input, "access_token", input.tokens.accessToken)
          const refresh = yield* refreshTokenToKeep(input, input.tokens.refreshToken)
          return yield* exactlyOne(sql`
            insert into oauth_connections (user_id, platform, account_id, status, access_token, refresh_token, key_id,
              token_type, scope, expires_at, provider_data, refresh_failures, last_refresh_error, next_attempt_at,
              lease_until, created_at, updated_at)
            values (${input.userId}, ${input.platform}, ${input.accountId}, 'active', ${access.bytes}, ${refresh},
              ${access.keyId}, ${input.tokens.tokenType}, ${input.tokens.scope}, ${input.tokens.expiresAt},
              ${JSON.stringify(input.providerData)}::jsonb, 0, null, null, null, ${now}, ${now})
            on conflict (user_id, platform, account_id) do update set
              status = 'active', access_token = excluded.access_token, refresh_token = excluded.refresh_token,
              key_id = excluded.key_id, token_type = excluded.token_type, scope = excluded.scope,
              expires_at = excluded.expires_at, provider_data = excluded.provider_data, refresh_failures = 0,
              last_refresh_error = null, next_attempt_at = null, lease_until = null, lease_owner = null,
              invalid_grant_streak = 0, expiry_warned_at = null, updated_at = ${now}
            returning ${select}`)
        })
      ).pipe(orUnavailable)

    /** An UPDATE of the row (returning *) under the outcome's lease, and its events, in one statement. */
    const writeOutcome = (id: string, changes: Fragment, outcome: Outcome, only: Fragment = sql`true`) =>
      one(sql`with changed as (
          update oauth_connections set ${changes}, lease_until = null, lease_owner = null, updated_at = ${outcome.now}
          where id = ${id} and status = 'active' and lease_owner = ${outcome.owner} and ${only}
          returning *
        ), logged as (${insertEventsForChanged(sql, outcome.events, outcome.now)})
        select ${select} from changed`).pipe(orUnavailable)

    const buffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

    /**
     * Stores refreshes' results and releases their leases, all in one statement with their
     * events. The refresh token stored is the rotated one; else the kept one, as it is when
     * sealed under the current key, otherwise the presented one re-sealed (one key id per
     * row). Gives each connection's row as stored, none when it was disconnected or revoked
     * meanwhile, or is no longer leased by the outcome's owner.
     */
    const storeRefreshes = (batch: ReadonlyArray<RefreshToStore>) =>
      Effect.suspend(() => {
        const rows = batch.map(({ connection, outcome, tokens }): RefreshRow => {
          const access = cipher.unsafeSeal(tokens.accessToken, connectionContext(connection, "access_token"))
          const sameKey = connection.keyId === access.keyId
          const toSeal = Option.isSome(tokens.refreshToken) || sameKey ? tokens.refreshToken : tokens.previousRefreshToken
          const refresh = Option.isSome(toSeal) ? cipher.unsafeSeal(toSeal.value, connectionContext(connection, "refresh_token")) : undefined
          return {
            id: connection.id,
            owner: outcome.owner,
            access: buffer(access.bytes),
            keyId: access.keyId,
            refresh: refresh === undefined ? null : buffer(refresh.bytes),
            // Never keep a ciphertext beside a key id that cannot open it.
            mode: refresh !== undefined ? "set" : sameKey ? "keep" : "drop",
            tokenType: tokens.tokenType,
            scope: tokens.scope,
            expiresAt: tokens.expiresAt,
            at: outcome.now,
            events: JSON.stringify(outcome.events)
          }
        })
        return Effect.map(orUnavailable(storeRefreshesStatement(sql, rows)), (stored) => {
          const written = new Set(stored.map((r) => r.id))
          const result = new Map<string, Connection>()
          batch.forEach(({ connection }, i) => {
            const row = rows[i]
            if (row !== undefined && written.has(connection.id)) result.set(connection.id, afterRefresh(connection, row))
          })
          return result
        })
      })

    /** One refresh's result, stored as storeRefreshes stores a batch. */
    const storeRefresh = (connection: Connection, tokens: RefreshedTokens, outcome: Outcome) =>
      Effect.map(storeRefreshes([{ connection, tokens, outcome }]), (stored) => Option.fromNullable(stored.get(connection.id)))

    const unreadable = (connection: Connection, reason: string) => new ConnectionUnreadable({ platform: connection.platform, reason })
    const openField = (connection: Connection, keyId: string, field: "access_token" | "refresh_token", bytes: Uint8Array) =>
      Either.mapLeft(cipher.unsafeOpen({ keyId, bytes }, connectionContext(connection, field)), (e) => unreadable(connection, e.message))

    /** The refresh token alone (what a refresh needs), from ciphertexts read with the row. */
    const openRefreshToken = (connection: Connection, row: SealedTokens): Either.Either<Option.Option<Redacted.Redacted<string>>, ConnectionUnreadable> => {
      if (row.accessToken === null || row.keyId === null) return Either.left(unreadable(connection, "no stored token"))
      return row.refreshToken === null
        ? Either.right(Option.none())
        : Either.map(openField(connection, row.keyId, "refresh_token", row.refreshToken), Option.some)
    }

    /** Decrypts ciphertexts read with the row (the monitor's claim returns them). */
    const openTokens = (connection: Connection, row: SealedTokens | undefined): Effect.Effect<TokenSet, ConnectionUnreadable> =>
      Effect.suspend(() =>
        row === undefined || row.accessToken === null || row.keyId === null
          ? Either.left(unreadable(connection, "no stored token"))
          : Either.all({
            accessToken: openField(connection, row.keyId, "access_token", row.accessToken),
            refreshToken: openRefreshToken(connection, row)
          })
      )

    const tokens = (connection: Connection): Effect.Effect<TokenSet, ConnectionUnreadable | DatabaseUnavailable> =>
      sql`select key_id, access_token, refresh_token from oauth_connections where id = ${connection.id}`.pipe(
        Effect.flatMap(decodeTokenRows),
        orUnavailable,
        Effect.flatMap((rows) => openTokens(connection, rows[0]))
      )

    /** Claimed rows come with their ciphertexts, so refreshing them reads nothing more. */
    const claimed = <E, R>(rows: Effect.Effect<ReadonlyArray<unknown>, E, R>) =>
      Effect.flatMap(rows, decodeClaimed).pipe(
        Effect.map((found) => found.map(({ sealedAccessToken, sealedRefreshToken, ...connection }) => ({
          connection,
          sealed: { keyId: connection.keyId, accessToken: sealedAccessToken, refreshToken: sealedRefreshToken }
        })))
      )

    return {
      upsert,
      storeRefresh,
      storeRefreshes,
      tokens,
      openTokens,
      openRefreshToken,
      findById: (id: string) => one(sql`select ${select} from oauth_connections where id = ${id}`).pipe(orUnavailable),
      /** The connections of several users in one statement, each user's ordered by platform and account. */
      findByUsers: (userIds: ReadonlyArray<string>) =>
        many(sql`select ${select} from oauth_connections where user_id = any(${userIds})
          order by user_id, platform, account_id`).pipe(orUnavailable),
      findByUserAndPlatform: (userId: string, platform: string) =>
        many(sql`select ${select} from oauth_connections where user_id = ${userId} and platform = ${platform}
          order by account_id`).pipe(orUnavailable),
      /**
       * A connection that cannot be used any more: needs_reauth (the grant is dead) or
       * revoked. Never a row sealed under a key this process lacks: its tokens are unreadable
       * here but not lost, and restoring the key recovers it (the write then gives none).
       */
      markDead: (id: string, status: "needs_reauth" | "revoked", reason: string, outcome: Outcome) =>
        writeOutcome(
          id,
          sql`status = ${status}, last_refresh_error = ${reason}, next_attempt_at = null`,
          outcome,
          sql`(key_id is null or key_id = any(${cipher.keyIds}))`
        ),

      /**
       * Takes the refresh lease when it is free or expired: the single-flight guard shared
       * by the monitor and the API across processes. None when another holder has it.
       */
      acquireLease: (id: string, owner: string, now: Date, until: Date) =>
        one(sql`update oauth_connections set lease_until = ${until}, lease_owner = ${owner}
          where id = ${id} and (lease_until is null or lease_until <= ${now})
          returning ${select}`).pipe(orUnavailable),

      releaseLease: (id: string, owner: string) =>
        sql`update oauth_connections set lease_until = null, lease_owner = null
          where id = ${id} and lease_owner = ${owner}`.pipe(Effect.asVoid, orUnavailable),

      /** Releases, in one statement, the leases `owner` still holds among `ids`. */
      releaseLeases: (ids: ReadonlyArray<string>, owner: string) =>
        ids.length === 0
          ? Effect.void
          : sql`update oauth_connections set lease_until = null, lease_owner = null
              where id = any(${ids}::uuid[]) and lease_owner = ${owner}`.pipe(Effect.asVoid, orUnavailable),

      /** A failed refresh or validation: counts it and schedules the next attempt. */
      recordRefreshFailure: (
        id: string,
        failure: { readonly error: string; readonly invalidGrant: boolean; readonly nextAttemptAt: Date },
        outcome: Outcome
      ) =>
        writeOutcome(id, sql`refresh_failures = refresh_failures + 1, last_refresh_error = ${failure.error},
          invalid_grant_streak = case when ${failure.invalidGrant} then invalid_grant_streak + 1 else 0 end,
          next_attempt_at = ${failure.nextAttemptAt}`, outcome),

      markValidated: (id: string, outcome: Outcome) =>
        writeOutcome(id, sql`last_validated_at = ${outcome.now}, refresh_failures = 0, last_refresh_error = null,
          next_attempt_at = null, invalid_grant_streak = 0`, outcome),

      /**
       * The monitor's claim, one statement: active connections with a refresh token that
       * expire before `horizon`, sealed under a configured key, not waiting for a retry, not
       * leased — locked with SKIP LOCKED so concurrent monitors take disjoint rows, and leased
       * to `owner`. A row `owner` held is not taken again by it even once that lease has run
       * out: each pass (one owner) attempts a row at most once.
       */
      claimDueRefreshes: (owner: string, now: Date, horizon: Date, leaseUntil: Date, limit: number) =>
        claimDueRefreshesStatement(sql, { owner, now, horizon, leaseUntil, limit, keyIds: cipher.keyIds }).pipe(claimed, orUnavailable),

      /** Like claimDueRefreshes, for tokens without expiry not validated since `validatedBefore`. */
      claimDueValidations: (owner: string, now: Date, validatedBefore: Date, leaseUntil: Date, limit: number) =>
        sql`with due as (
            select id from oauth_connections
            where status = 'active' and expires_at is null and access_token is not null
              and key_id = any(${cipher.keyIds})
              and (last_validated_at is null or last_validated_at < ${validatedBefore})
              and (next_attempt_at is null or next_attempt_at <= ${now})
              and (lease_until is null or lease_until <= ${now})
              and lease_owner is distinct from ${owner}
            limit ${limit}
            for update skip locked
          )
          update oauth_connections c set lease_until = ${leaseUntil}, lease_owner = ${owner}
          from due where c.id = due.id
          returning ${selectClaimed}, c.access_token as sealed_access_token, c.refresh_token as sealed_refresh_token`.pipe(claimed, orUnavailable),

      /**
       * Marks connections that cannot be refreshed and expire before `horizon` as warned and
       * writes their expiring_soon events, in one statement, returning those newly marked:
       * one event each, whatever the number of monitors.
       */
      claimExpiryWarnings: (now: Date, horizon: Date, limit: number) =>
        many(sql`with due as (
            select id from oauth_connections
            where status = 'active' and refresh_token is null and expires_at > ${now} and expires_at < ${horizon}
              and expiry_warned_at is null
            limit ${limit}
            for update skip locked
          ), changed as (
            update oauth_connections c set expiry_warned_at = ${now}
            from due where c.id = due.id
            returning c.*
          ), logged as (${
          insertEventsForChanged(
            sql,
            [{ kind: "expiring_soon", detail: { reason: "no_refresh_token" } }],
            now,
            sql`jsonb_build_object('expires_at', to_char(changed.expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))`
          )
        })
          select ${select} from changed`).pipe(orUnavailable),

      /** Forgets the tokens of every account of the platform; the rows stay for the audit trail. */
      disconnect: (userId: string, platform: string, now: Date) =>
        many(sql`update oauth_connections set status = 'disconnected', access_token = null, refresh_token = null,
          key_id = null, lease_until = null, lease_owner = null, next_attempt_at = null, updated_at = ${now}
          where user_id = ${userId} and platform = ${platform} and status <> 'disconnected'
          returning ${select}`).pipe(orUnavailable)
    } as const
  })
}) {}
