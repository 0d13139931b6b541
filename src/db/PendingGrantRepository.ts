import { randomUUID } from "node:crypto"
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Either, Option, Redacted, Schema } from "effect"
import { pendingContext, TokenCipher } from "../crypto/TokenCipher.js"
import type { ConnectionIdentity, IssuedTokens } from "../domain/Connection.js"
import { orUnavailable } from "./Database.js"

/** A grant a callback obtained, to store until the application confirms it. */
export interface NewPendingGrant extends ConnectionIdentity {
  readonly tokens: IssuedTokens
  readonly providerData: Record<string, unknown>
  readonly confirmationHash: Uint8Array
  readonly flowStartedAt: Date
  readonly confirmBy: Date
}

/** A pending grant as taken from storage, its tokens opened. */
export interface PendingGrant extends ConnectionIdentity {
  readonly id: string
  readonly tokens: IssuedTokens
  readonly providerData: Record<string, unknown>
  readonly flowStartedAt: Date
  readonly confirmBy: Date
}

const Row = Schema.Struct({
  id: Schema.String,
  userId: Schema.String,
  platform: Schema.String,
  accountId: Schema.String,
  accessToken: Schema.Uint8ArrayFromSelf,
  refreshToken: Schema.NullOr(Schema.Uint8ArrayFromSelf),
  keyId: Schema.String,
  tokenType: Schema.NullOr(Schema.String),
  scope: Schema.NullOr(Schema.String),
  expiresAt: Schema.NullOr(Schema.DateFromSelf),
  providerData: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  flowStartedAt: Schema.DateFromSelf,
  confirmBy: Schema.DateFromSelf
})
const decodeRows = Schema.decodeUnknown(Schema.Array(Row))


/**
 * Grants waiting for their confirmation (oauth_pending_grants). Each is taken at most once:
 * `lock` inside the transaction that confirms or refuses it, `takeExpired` by the cleanup.
 */
export class PendingGrantRepository extends Effect.Service<PendingGrantRepository>()("Integrations/PendingGrantRepository", {
  dependencies: [TokenCipher.Default],
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const cipher = yield* TokenCipher

    /**
     * A row with its tokens opened; none when they cannot be (a key dropped meanwhile): such a
     * grant can be neither confirmed nor revoked, only dropped.
     */
    const opened = (row: typeof Row.Type): Option.Option<PendingGrant> => {
      const access = cipher.unsafeOpen({ keyId: row.keyId, bytes: row.accessToken }, pendingContext(row.id, row, "access_token"))
      const refresh = row.refreshToken === null
        ? Either.right(Option.none<Redacted.Redacted<string>>())
        : Either.map(cipher.unsafeOpen({ keyId: row.keyId, bytes: row.refreshToken }, pendingContext(row.id, row, "refresh_token")), Option.some)
      if (Either.isLeft(access) || Either.isLeft(refresh)) return Option.none()
      return Option.some({
        id: row.id,
        userId: row.userId,
        platform: row.platform,
        accountId: row.accountId,
        providerData: row.providerData,
        flowStartedAt: row.flowStartedAt,
        confirmBy: row.confirmBy,
        tokens: { accessToken: access.right, refreshToken: refresh.right, tokenType: row.tokenType, scope: row.scope, expiresAt: row.expiresAt }
      })
    }

    return {
      create: (grant: NewPendingGrant, now: Date) =>
        Effect.gen(function*() {
          const id = randomUUID()
          const access = yield* cipher.seal(grant.tokens.accessToken, pendingContext(id, grant, "access_token"))
          const refresh = yield* cipher.sealOption(grant.tokens.refreshToken, pendingContext(id, grant, "refresh_token"))
          yield* sql`insert into oauth_pending_grants (id, confirmation_hash, user_id, platform, account_id, access_token,
              refresh_token, key_id, token_type, scope, expires_at, provider_data, flow_started_at, confirm_by, created_at)
            values (${id}, ${grant.confirmationHash}, ${grant.userId}, ${grant.platform}, ${grant.accountId}, ${access.bytes},
              ${Option.getOrNull(Option.map(refresh, (r) => r.bytes))}, ${access.keyId}, ${grant.tokens.tokenType},
              ${grant.tokens.scope}, ${grant.tokens.expiresAt}, ${JSON.stringify(grant.providerData)}::jsonb,
              ${grant.flowStartedAt}, ${grant.confirmBy}, ${now})`.pipe(orUnavailable)
          return id
        }),

      /**
       * The grant of a confirmation code for `platform`, locked until the surrounding
       * transaction ends (run it inside one, with `remove`): of concurrent confirmations one
       * takes it, the others find it gone. None when no such grant is waiting; `unreadable`
       * when its tokens cannot be opened.
       */
      lock: (confirmationHash: Uint8Array, platform: string) =>
        sql`select * from oauth_pending_grants where confirmation_hash = ${confirmationHash} and platform = ${platform}
          for update`.pipe(
          Effect.flatMap(decodeRows),
          orUnavailable,
          Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), (row) => ({ id: row.id, grant: opened(row) })))
        ),

      remove: (id: string) => sql`delete from oauth_pending_grants where id = ${id}`.pipe(Effect.asVoid, orUnavailable),

      /**
       * Deletes up to `limit` grants whose confirmation time has passed, in one statement, and
       * gives them (those whose tokens open) to be revoked. Safe with several processes at once.
       */
      takeExpired: (now: Date, limit: number) =>
        sql`delete from oauth_pending_grants where id in (
            select id from oauth_pending_grants where confirm_by <= ${now} order by confirm_by limit ${limit}
            for update skip locked
          ) returning *`.pipe(
          Effect.flatMap(decodeRows),
          orUnavailable,
          Effect.map((rows) => ({ taken: rows.length, grants: rows.flatMap((row) => Option.toArray(opened(row))) }))
        )
    } as const
  })
}) {}
