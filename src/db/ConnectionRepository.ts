import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import type { Fragment } from "@effect/sql/Statement"
import { Effect, Either, Option, Schema } from "effect"
import { TokenCipher } from "../crypto/TokenCipher.js"
import { Connection, type ConnectionIdentity, type TokenSet } from "../domain/Connection.js"
import type { ConnectionUnreadable, DatabaseUnavailable } from "../domain/errors.js"
import { connectionColumns, decodeClaimed, TokenRow } from "./connectionRows.js"
import type { ImportToWrite, NewConnection, Outcome, RefreshedTokens, RefreshToStore } from "./connectionWrites.js"
import { lockImportTargetsStatement, writeImportsStatement } from "./importStatements.js"
import { orUnavailable } from "./Database.js"
import { insertEventsForChanged } from "./EventRepository.js"
import {
  claimDueRefreshesStatement,
  claimDueValidationsStatement,
  claimExpiryWarnings,
  releaseLeasesStatement,
  storeRefreshRows
} from "./monitorQueries.js"
import { connectionSealing } from "./sealing.js"

const KeyUse = Schema.Struct({ keyId: Schema.String, connections: Schema.Number })

/**
 * How many stored connections each key id seals (rows holding a ciphertext), ordered by key
 * id: what the start compares with TOKEN_ENCRYPTION_KEYS. One scan of the table.
 */
export const connectionsByKeyId = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  SqlSchema.findAll({
    Request: Schema.Void,
    Result: KeyUse,
    execute: () =>
      sql`select key_id, count(*)::int as connections from oauth_connections
        where key_id is not null and (access_token is not null or refresh_token is not null)
        group by key_id order by key_id`
  })(undefined).pipe(orUnavailable))

/** The row an upsert writes: a NewConnection with its tokens sealed. */
const UpsertRow = Schema.Struct({
  userId: Schema.String,
  platform: Schema.String,
  accountId: Schema.String,
  accessToken: Schema.Uint8ArrayFromSelf,
  refreshToken: Schema.NullOr(Schema.Uint8ArrayFromSelf),
  keyId: Schema.String,
  tokenType: Connection.fields.tokenType,
  scope: Connection.fields.scope,
  expiresAt: Connection.fields.expiresAt,
  providerData: Connection.fields.providerData,
  now: Schema.DateFromSelf
})

const Identity = Schema.Struct({ userId: Schema.String, platform: Schema.String, accountId: Schema.String })
const decodeConnections = Schema.decodeUnknown(Schema.Array(Connection))

export class ConnectionRepository extends Effect.Service<ConnectionRepository>()("Integrations/ConnectionRepository", {
  dependencies: [TokenCipher.Default],
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const cipher = yield* TokenCipher
    const sealing = connectionSealing(cipher)
    const select = sql.literal(connectionColumns)

    const insert = SqlSchema.single({
      Request: UpsertRow,
      Result: Connection,
      execute: (row) =>
        sql`insert into oauth_connections (user_id, platform, account_id, status, access_token, refresh_token, key_id,
            token_type, scope, expires_at, provider_data, refresh_failures, last_refresh_error, next_attempt_at,
            lease_until, created_at, updated_at)
          values (${row.userId}, ${row.platform}, ${row.accountId}, 'active', ${row.accessToken}, ${row.refreshToken},
            ${row.keyId}, ${row.tokenType}, ${row.scope}, ${row.expiresAt},
            ${JSON.stringify(row.providerData)}::jsonb, 0, null, null, null, ${row.now}, ${row.now})
          on conflict (user_id, platform, account_id) do update set
            status = 'active', access_token = excluded.access_token, refresh_token = excluded.refresh_token,
            key_id = excluded.key_id, token_type = excluded.token_type, scope = excluded.scope,
            expires_at = excluded.expires_at, provider_data = excluded.provider_data, refresh_failures = 0,
            last_refresh_error = null, next_attempt_at = null, lease_until = null, lease_owner = null,
            invalid_grant_streak = 0, expiry_warned_at = null, unverified = false, failing_since = null,
            failing_announced = false, updated_at = ${row.now}
          returning ${select}`
    })

    /** The stored ciphertexts of (user, platform, account), locked until the transaction ends. */
    const lockTokens = SqlSchema.findOne({
      Request: Identity,
      Result: TokenRow,
      execute: (identity) =>
        sql`select key_id, access_token, refresh_token from oauth_connections
          where user_id = ${identity.userId} and platform = ${identity.platform} and account_id = ${identity.accountId}
          for update`
    })

    const upsert = (input: NewConnection, now: Date) =>
      sql.withTransaction(
        Effect.gen(function*() {
          const access = yield* sealing.seal(input, "access_token", input.tokens.accessToken)
          // In the transaction of the insert, so that the token kept is the row's as it is overwritten.
          const refresh = yield* sealing.refreshTokenToKeep(input, input.tokens.refreshToken, lockTokens(input))
          return yield* insert({
            userId: input.userId,
            platform: input.platform,
            accountId: input.accountId,
            accessToken: access.bytes,
            refreshToken: refresh,
            keyId: access.keyId,
            tokenType: input.tokens.tokenType,
            scope: input.tokens.scope,
            expiresAt: input.tokens.expiresAt,
            providerData: input.providerData,
            now
          }).pipe(Effect.catchTag("NoSuchElementException", () => Effect.dieMessage("statement returned no row")))
        })
      ).pipe(orUnavailable)

    /** An UPDATE of the row (returning *) under the outcome's lease, and its events, in one statement. */
    const writeOutcome = (id: string, changes: Fragment, outcome: Outcome, only: Fragment = sql`true`) =>
      sql`with changed as (
          update oauth_connections set ${changes}, lease_until = null, lease_owner = null, updated_at = ${outcome.now}
          where id = ${id} and status = 'active' and lease_owner = ${outcome.owner} and ${only}
          returning *
        ), logged as (${insertEventsForChanged(sql, outcome.events, outcome.now)})
        select ${select} from changed`.pipe(
        Effect.flatMap(decodeConnections),
        Effect.map((found) => Option.fromNullable(found[0])),
        orUnavailable
      )

    /**
     * Stores refreshes' results and releases their leases, all in one statement with their
     * events (sealed as connectionSealing's refreshRow says). Gives each connection's row as
     * stored, none when it was disconnected or revoked meanwhile, or is no longer leased by
     * the outcome's owner.
     */
    const storeRefreshes = (batch: ReadonlyArray<RefreshToStore>) =>
      Effect.suspend(() => orUnavailable(storeRefreshRows(sql, batch, batch.map(sealing.refreshRow))))

    /** One refresh's result, stored as storeRefreshes stores a batch. */
    const storeRefresh = (connection: Connection, tokens: RefreshedTokens, outcome: Outcome) =>
      Effect.map(storeRefreshes([{ connection, tokens, outcome }]), (stored) => Option.fromNullable(stored.get(connection.id)))

    const readTokens = SqlSchema.findOne({
      Request: Schema.String,
      Result: TokenRow,
      execute: (id) => sql`select key_id, access_token, refresh_token from oauth_connections where id = ${id}`
    })
    const tokens = (connection: Connection): Effect.Effect<TokenSet, ConnectionUnreadable | DatabaseUnavailable> =>
      readTokens(connection.id).pipe(
        orUnavailable,
        Effect.flatMap((row) => sealing.openTokens(connection, Option.getOrUndefined(row)))
      )

    const findById = SqlSchema.findOne({
      Request: Schema.String,
      Result: Connection,
      execute: (id) => sql`select ${select} from oauth_connections where id = ${id}`
    })
    const findByUsers = SqlSchema.findAll({
      Request: Schema.Array(Schema.String),
      Result: Connection,
      execute: (userIds) =>
        sql`select ${select} from oauth_connections where user_id = any(${userIds})
          order by user_id, platform, account_id`
    })
    const findByUserAndPlatform = SqlSchema.findAll({
      Request: Schema.Struct({ userId: Schema.String, platform: Schema.String }),
      Result: Connection,
      execute: ({ platform, userId }) =>
        sql`select ${select} from oauth_connections where user_id = ${userId} and platform = ${platform}
          order by account_id`
    })
    const acquireLease = SqlSchema.findOne({
      Request: Schema.Struct({ id: Schema.String, owner: Schema.String, now: Schema.DateFromSelf, until: Schema.DateFromSelf }),
      Result: Connection,
      execute: ({ id, now, owner, until }) =>
        sql`update oauth_connections set lease_until = ${until}, lease_owner = ${owner}
          where id = ${id} and (lease_until is null or lease_until <= ${now})
          returning ${select}`
    })
    const releaseLease = SqlSchema.void({
      Request: Schema.Struct({ id: Schema.String, owner: Schema.String }),
      execute: ({ id, owner }) =>
        sql`update oauth_connections set lease_until = null, lease_owner = null
          where id = ${id} and lease_owner = ${owner}`
    })
    const disconnect = SqlSchema.findAll({
      Request: Schema.Struct({ userId: Schema.String, platform: Schema.String, now: Schema.DateFromSelf }),
      Result: Connection,
      execute: ({ now, platform, userId }) =>
        sql`update oauth_connections set status = 'disconnected', access_token = null, refresh_token = null,
          key_id = null, lease_until = null, lease_owner = null, next_attempt_at = null, updated_at = ${now}
          where user_id = ${userId} and platform = ${platform} and status <> 'disconnected'
          returning ${select}`
    })
    const expiryWarnings = claimExpiryWarnings(sql)

    return {
      upsert,
      storeRefresh,
      storeRefreshes,
      tokens,
      openTokens: sealing.openTokens,
      openRefreshToken: sealing.openRefreshToken,
      findById: (id: string) => findById(id).pipe(orUnavailable),
      /** The connections of several users in one statement, each user's ordered by platform and account. */
      findByUsers: (userIds: ReadonlyArray<string>) => findByUsers(userIds).pipe(orUnavailable),
      findByUserAndPlatform: (userId: string, platform: string) => findByUserAndPlatform({ userId, platform }).pipe(orUnavailable),
      /**
       * A connection that cannot be used any more: needs_reauth (the grant is dead) or
       * revoked. Never a row sealed under a key this process lacks: its tokens are unreadable
       * here but not lost, and restoring the key recovers it (the write then gives none).
       */
      markDead: (id: string, status: "needs_reauth" | "revoked", reason: string, outcome: Outcome) =>
        writeOutcome(
          id,
          sql`status = ${status}, last_refresh_error = ${reason}, next_attempt_at = null, failing_since = null, failing_announced = false`,
          outcome,
          sql`(key_id is null or key_id = any(${cipher.keyIds}))`
        ),

      /**
       * Takes the refresh lease when it is free or expired: the single-flight guard shared
       * by the monitor and the API across processes. None when another holder has it.
       */
      acquireLease: (id: string, owner: string, now: Date, until: Date) => acquireLease({ id, owner, now, until }).pipe(orUnavailable),

      releaseLease: (id: string, owner: string) => releaseLease({ id, owner }).pipe(orUnavailable),

      /** Releases, in one statement, the leases `owner` still holds among `ids`. */
      releaseLeases: (ids: ReadonlyArray<string>, owner: string) =>
        ids.length === 0 ? Effect.void : releaseLeasesStatement(sql, ids, owner).pipe(Effect.asVoid, orUnavailable),

      /** A failed refresh or validation: counts it and schedules the next attempt. */
      recordRefreshFailure: (
        id: string,
        failure: {
          readonly error: string
          readonly invalidGrant: boolean
          readonly nextAttemptAt: Date
          /** connection.refresh_failing is sent with this failure (its event is among the outcome's). */
          readonly announceFailing: boolean
        },
        outcome: Outcome
      ) =>
        writeOutcome(id, sql`refresh_failures = refresh_failures + 1, last_refresh_error = ${failure.error},
          invalid_grant_streak = case when ${failure.invalidGrant} then invalid_grant_streak + 1 else 0 end,
          next_attempt_at = ${failure.nextAttemptAt}, failing_since = coalesce(failing_since, ${outcome.now}),
          failing_announced = failing_announced or ${failure.announceFailing}`, outcome),

      markValidated: (id: string, outcome: Outcome) =>
        writeOutcome(id, sql`last_validated_at = ${outcome.now}, refresh_failures = 0, last_refresh_error = null,
          next_attempt_at = null, invalid_grant_streak = 0, unverified = false, failing_since = null, failing_announced = false`, outcome),

      /**
       * The monitor's claim (claimDueRefreshesStatement) under the configured keys. A row
       * `owner` held is not taken again by it even once that lease has run out: each pass (one
       * owner) attempts a row at most once.
       */
      claimDueRefreshes: (owner: string, now: Date, horizon: Date, leaseUntil: Date, limit: number) =>
        claimDueRefreshesStatement(sql, { owner, now, horizon, leaseUntil, limit, keyIds: cipher.keyIds }).pipe(
          Effect.flatMap(decodeClaimed),
          orUnavailable
        ),

      /** Like claimDueRefreshes, for tokens without expiry not validated since `validatedBefore`. */
      claimDueValidations: (owner: string, now: Date, validatedBefore: Date, leaseUntil: Date, limit: number) =>
        claimDueValidationsStatement(sql, { owner, now, validatedBefore, leaseUntil, limit, keyIds: cipher.keyIds }).pipe(
          Effect.flatMap(decodeClaimed),
          orUnavailable
        ),

      /**
       * Marks the connections that cannot be refreshed and expire before `horizon` as warned,
       * with their expiring_soon events, and gives those newly marked: one event each,
       * whatever the number of monitors.
       */
      claimExpiryWarnings: (now: Date, horizon: Date, limit: number) => expiryWarnings({ now, horizon, limit }).pipe(orUnavailable),

      /** Forgets the tokens of every account of the platform; the rows stay for the audit trail. */
      disconnect: (userId: string, platform: string, now: Date) => disconnect({ userId, platform, now }).pipe(orUnavailable),

      /**
       * The stored rows of these identities, locked until the transaction ends, each with its
       * tokens opened (none when they cannot be: an unknown key or a damaged ciphertext).
       */
      lockForImport: (identities: ReadonlyArray<ConnectionIdentity>) =>
        identities.length === 0
          ? Effect.succeed([])
          : lockImportTargetsStatement(sql, identities).pipe(
            Effect.flatMap(decodeClaimed),
            Effect.map((rows) =>
              rows.map(({ connection, sealed }) => ({
                connection,
                tokens: Either.getRight(sealing.openStored(connection, sealed))
              }))
            ),
            orUnavailable
          ),

      /** Writes imports (one per identity) with their `imported` events; gives the rows written. */
      writeImports: (items: ReadonlyArray<ImportToWrite>, now: Date) =>
        items.length === 0
          ? Effect.succeed([])
          : Effect.suspend(() => writeImportsStatement(sql, items.map(sealing.importRow), now)).pipe(
            Effect.flatMap(decodeConnections),
            orUnavailable
          )
    } as const
  })
}) {}
