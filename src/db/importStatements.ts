import type * as SqlClient from "@effect/sql/SqlClient"
import type { ConnectionIdentity } from "../domain/Connection.js"
import { claimedColumns, connectionColumns, type ImportRow } from "./connectionRows.js"

/**
 * The stored rows of these identities with their ciphertexts (claimedColumns: decodeClaimed
 * reads them), locked until the transaction ends, in id order so that two imports of
 * overlapping batches lock alike.
 */
export const lockImportTargetsStatement = (sql: SqlClient.SqlClient, identities: ReadonlyArray<ConnectionIdentity>) =>
  sql`select ${sql.literal(claimedColumns)} from oauth_connections c
    where (c.user_id, c.platform, c.account_id) in (
      select * from unnest(${identities.map((i) => i.userId)}::text[], ${identities.map((i) => i.platform)}::text[],
        ${identities.map((i) => i.accountId)}::text[]))
    order by c.id
    for update of c`

/**
 * Writes imported connections (one row per identity: the caller removes duplicates) and an
 * `imported` event for each, in one statement. A row that replaces one read under lock takes
 * the import whole: its tokens, and the monitor's bookkeeping started afresh. A new one is
 * written only if no row of its identity appeared since (another import creating it at the
 * same moment): it is then missing from the rows returned, and the caller decides it again.
 */
export const writeImportsStatement = (sql: SqlClient.SqlClient, rows: ReadonlyArray<ImportRow>, now: Date) => {
  const column = <A>(f: (row: ImportRow) => A) => rows.map(f)
  const columns = sql.literal(`user_id, platform, account_id, status, access_token, refresh_token, key_id, token_type, scope,
    expires_at, provider_data, unverified, created_at, updated_at`)
  const values = sql.literal(`user_id, platform, account_id, status, access_token, refresh_token, key_id, token_type, scope,
    expires_at, provider_data, unverified`)
  const returned = sql.literal(connectionColumns)
  return sql`with input as (
      select * from unnest(${column((r) => r.userId)}::text[], ${column((r) => r.platform)}::text[],
        ${column((r) => r.accountId)}::text[], ${column((r) => r.status)}::text[], ${column((r) => r.access)}::bytea[],
        ${column((r) => r.refresh)}::bytea[], ${column((r) => r.keyId)}::text[], ${column((r) => r.tokenType)}::text[],
        ${column((r) => r.scope)}::text[], ${column((r) => r.expiresAt)}::timestamptz[], ${column((r) => r.providerData)}::jsonb[],
        ${column((r) => r.unverified)}::bool[], ${column((r) => r.updatedAt)}::timestamptz[], ${column((r) => r.detail)}::jsonb[],
        ${column((r) => r.replaces)}::bool[])
        as i(user_id, platform, account_id, status, access_token, refresh_token, key_id, token_type, scope, expires_at,
          provider_data, unverified, updated_at, detail, replaces)
    ), fresh as (
      insert into oauth_connections (${columns})
      select ${values}, ${now}, updated_at from input where not replaces
      on conflict (user_id, platform, account_id) do nothing
      returning ${returned}
    ), replaced as (
      insert into oauth_connections (${columns})
      select ${values}, ${now}, updated_at from input where replaces
      on conflict (user_id, platform, account_id) do update set
        status = excluded.status, access_token = excluded.access_token, refresh_token = excluded.refresh_token,
        key_id = excluded.key_id, token_type = excluded.token_type, scope = excluded.scope, expires_at = excluded.expires_at,
        provider_data = excluded.provider_data, unverified = excluded.unverified, refresh_failures = 0,
        last_refresh_error = null, last_refreshed_at = null, next_attempt_at = null, lease_until = null, lease_owner = null,
        invalid_grant_streak = 0, last_validated_at = null, expiry_warned_at = null, failing_since = null,
        failing_announced = false, updated_at = excluded.updated_at
      returning ${returned}
    ), written as (
      select * from fresh union all select * from replaced
    ), logged as (
      insert into oauth_events (connection_id, user_id, platform, kind, detail, at)
      select w.id, w.user_id, w.platform, 'imported', i.detail, ${now}
      from written w join input i using (user_id, platform, account_id)
    )
    select * from written`
}
