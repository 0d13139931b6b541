import type * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { Effect, Schema } from "effect"
import { Connection } from "../domain/Connection.js"
import { claimedColumns, connectionColumns, type RefreshRow } from "./connectionRows.js"
import { insertEventsForChanged, insertOwnEventsForChanged } from "./EventRepository.js"

// The monitor's statements over many rows at once. The claims and the store run for every
// batch of `npm run bench:monitor`'s hot path: their rows are decoded once (claims) or not at
// all (the store gives ids), and their parameters are passed as they are, with no schema.

/**
 * The monitor's claim, one statement: active connections with a refresh token that expire
 * before `horizon`, sealed under one of `keyIds` (a row under a key this process lacks is
 * left for one that has it, or for this one restarted with it), not waiting for a retry,
 * not leased (nor held earlier by this pass), locked with SKIP LOCKED so concurrent monitors
 * take disjoint rows, and leased to `owner`; decodeClaimed reads its rows. Exported so the
 * benchmark can EXPLAIN the very statement the monitor runs.
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
    returning ${sql.literal(claimedColumns)}`

/**
 * Like claimDueRefreshesStatement, for tokens without expiry not validated since
 * `validatedBefore`; decodeClaimed reads its rows.
 */
export const claimDueValidationsStatement = (
  sql: SqlClient.SqlClient,
  claim: {
    readonly owner: string
    readonly now: Date
    readonly validatedBefore: Date
    readonly leaseUntil: Date
    readonly limit: number
    readonly keyIds: ReadonlyArray<string>
  }
) =>
  sql`with due as (
      select id from oauth_connections
      where status = 'active' and expires_at is null and access_token is not null
        and key_id = any(${claim.keyIds})
        and (last_validated_at is null or last_validated_at < ${claim.validatedBefore})
        and (next_attempt_at is null or next_attempt_at <= ${claim.now})
        and (lease_until is null or lease_until <= ${claim.now})
        and lease_owner is distinct from ${claim.owner}
      limit ${claim.limit}
      for update skip locked
    )
    update oauth_connections c set lease_until = ${claim.leaseUntil}, lease_owner = ${claim.owner}
    from due where c.id = due.id
    returning ${sql.literal(claimedColumns)}`

/**
 * Stores refreshes' results and releases their leases, all in one statement with their
 * events, for the rows `owner` still leases and that are still active; gives the ids of
 * those it stored. Exported so that the benchmark's baseline runs the very statement.
 * Its SET list is afterRefresh's: change them together.
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
        next_attempt_at = null, invalid_grant_streak = 0, expiry_warned_at = null, failing_since = null,
        failing_announced = false, lease_until = null, lease_owner = null, updated_at = i.at
      from input i
      where c.id = i.id and c.status = 'active' and c.lease_owner = i.owner
      returning c.id, c.user_id, c.platform, i.at as event_at, i.events as outcome_events
    ), logged as (${insertOwnEventsForChanged(sql)})
    select id from changed`
}

/**
 * The row as storeRefreshesStatement leaves it: the columns its SET list sets, over the row
 * as it was under the lease (nothing else changes a leased row: whoever does takes the lease,
 * and the statement then stores nothing). Saves reading every column back: RETURNING them
 * would have each stored row sent, parsed and decoded on the monitor's hot path. The test
 * "the row a stored refresh gives is the row as it reads back" holds the two together.
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
  failingSince: null,
  failingAnnounced: false,
  leaseUntil: null,
  updatedAt: stored.at
})

/**
 * Runs storeRefreshesStatement over `rows`, the i-th the refresh of `batch[i]`'s connection;
 * gives each stored connection's row as stored, by id (none for those not stored).
 */
export const storeRefreshRows = (
  sql: SqlClient.SqlClient,
  batch: ReadonlyArray<{ readonly connection: Connection }>,
  rows: ReadonlyArray<RefreshRow>
) =>
  Effect.map(storeRefreshesStatement(sql, rows), (stored) => {
    const written = new Set(stored.map((r) => r.id))
    const result = new Map<string, Connection>()
    batch.forEach(({ connection }, i) => {
      const row = rows[i]
      if (row !== undefined && written.has(connection.id)) result.set(connection.id, afterRefresh(connection, row))
    })
    return result
  })

/** Releases, in one statement, the leases `owner` still holds among `ids` (at least one). */
export const releaseLeasesStatement = (sql: SqlClient.SqlClient, ids: ReadonlyArray<string>, owner: string) =>
  sql`update oauth_connections set lease_until = null, lease_owner = null
    where id = any(${ids}::uuid[]) and lease_owner = ${owner}`

/**
 * Marks connections that cannot be refreshed and expire before `horizon` as warned and
 * writes their expiring_soon events, in one statement, returning those newly marked: one
 * event each, whatever the number of monitors. Once a pass, off the hot path.
 */
export const claimExpiryWarnings = (sql: SqlClient.SqlClient) =>
  SqlSchema.findAll({
    Request: Schema.Struct({ now: Schema.DateFromSelf, horizon: Schema.DateFromSelf, limit: Schema.Number }),
    Result: Connection,
    execute: ({ horizon, limit, now }) =>
      sql`with due as (
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
        select ${sql.literal(connectionColumns)} from changed`
  })
