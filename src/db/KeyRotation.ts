import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Either } from "effect"
import { connectionContext, pendingContext, stateContext, TokenCipher } from "../crypto/TokenCipher.js"
import { orUnavailable } from "./Database.js"

/** Where secrets are sealed: connections' tokens, pending grants' tokens, authorisation requests' verifiers. */
export const SEALED_TABLES = ["connections", "pending_grants", "authorization_requests"] as const
export type SealedTable = (typeof SEALED_TABLES)[number]

export interface KeyUsage {
  readonly keyId: string
  readonly table: SealedTable
  readonly rows: number
}

/** What a batch did: rows re-sealed, rows changed meanwhile by someone else (left to them), rows no configured key opens. */
export interface BatchResult {
  readonly resealed: number
  readonly changed: number
  readonly unreadable: number
  /** Where the next batch starts; null when this one was the last. */
  readonly next: string | null
}

/** Rows per statement: each batch is one read and one write. */
export const ROTATION_BATCH = 500

/** A batch's counts from the rows read, those opened and re-sealed, and those the write changed; where the next one starts. */
const batchResult = <Row>(
  rows: ReadonlyArray<Row>,
  limit: number,
  opened: number,
  written: number,
  unreadable: number,
  cursor: (row: Row) => string
): BatchResult => {
  const last = rows[rows.length - 1]
  return { resealed: written, changed: opened - written, unreadable, next: rows.length < limit || last === undefined ? null : cursor(last) }
}

const buffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** Each row re-sealed by `reseal` (Left: no configured key opens it): what to write, and how many rows no key opened. */
const resealRows = <Row, Resealed>(rows: ReadonlyArray<Row>, reseal: (row: Row) => Either.Either<Resealed, unknown>) => {
  const done: Array<Resealed> = []
  let unreadable = 0
  for (const row of rows) {
    const resealed = reseal(row)
    if (Either.isLeft(resealed)) unreadable++
    else done.push(resealed.right)
  }
  return { done, unreadable }
}

/** A column that must hold a ciphertext: a row without one is as unreadable as one no key opens. */
const present = <A>(value: A | null): Either.Either<A, "missing"> => (value === null ? Either.left("missing") : Either.right(value))

/**
 * Re-sealing under the current key (the first of TOKEN_ENCRYPTION_KEYS), online: rows are read
 * in batches by key, opened with the key that sealed them and sealed again, and written in one
 * statement per batch that changes only the rows still holding the ciphertexts read. A row a
 * refresh, a reconnection or a confirmation rewrote meanwhile is left as that write made it
 * (sealed under the current key already): nothing is ever overwritten with older tokens, so no
 * lease is needed and a refresh in flight is never lost. A second run continues where the rows
 * still under old keys are.
 */
export class KeyRotation extends Effect.Service<KeyRotation>()("Integrations/KeyRotation", {
  dependencies: [TokenCipher.Default],
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const cipher = yield* TokenCipher
    const current = cipher.currentKeyId

    /** Rows per key id and table (only rows holding a sealed secret). */
    const usage = sql<{ keyId: string; source: SealedTable; rows: number }>`
      select key_id, 'connections' as source, count(*)::int as rows from oauth_connections where key_id is not null group by key_id
      union all
      select key_id, 'pending_grants', count(*)::int from oauth_pending_grants group by key_id
      union all
      select key_id, 'authorization_requests', count(*)::int from oauth_states where code_verifier is not null and key_id is not null group by key_id
      order by 1, 2`.pipe(Effect.map((rows): ReadonlyArray<KeyUsage> => rows.map((r) => ({ keyId: r.keyId, table: r.source, rows: r.rows }))), orUnavailable)

    /** Rows still sealed under another key than the current one. */
    const remaining = Effect.map(usage, (all) => all.filter((u) => u.keyId !== current).reduce((n, u) => n + u.rows, 0))

    const reseal = (keyId: string, bytes: Uint8Array | null, context: ReadonlyArray<string>) =>
      bytes === null
        ? Either.right(null)
        : Either.map(cipher.unsafeOpen({ keyId, bytes }, context), (plain) => buffer(cipher.unsafeSeal(plain, context).bytes))

    const connections = (after: string, limit: number) =>
      Effect.gen(function*() {
        const rows = yield* sql<{
          id: string
          userId: string
          platform: string
          accountId: string
          keyId: string
          accessToken: Uint8Array | null
          refreshToken: Uint8Array | null
        }>`select id, user_id, platform, account_id, key_id, access_token, refresh_token from oauth_connections
          where key_id is not null and key_id <> ${current} and id > ${after}::uuid order by id limit ${limit}`
        const { done, unreadable } = resealRows(rows, (row) =>
          Either.zipWith(
            reseal(row.keyId, row.accessToken, connectionContext(row, "access_token")),
            reseal(row.keyId, row.refreshToken, connectionContext(row, "refresh_token")),
            (access, refresh) => ({
              id: row.id,
              keyId: row.keyId,
              oldAccess: row.accessToken === null ? null : buffer(row.accessToken),
              oldRefresh: row.refreshToken === null ? null : buffer(row.refreshToken),
              access,
              refresh
            })
          ))
        const written = done.length === 0 ? [] : yield* sql<{ id: string }>`update oauth_connections c
          set access_token = i.access, refresh_token = i.refresh, key_id = ${current}
          from unnest(${done.map((d) => d.id)}::uuid[], ${done.map((d) => d.keyId)}::text[], ${done.map((d) => d.oldAccess)}::bytea[],
            ${done.map((d) => d.oldRefresh)}::bytea[], ${done.map((d) => d.access)}::bytea[], ${done.map((d) => d.refresh)}::bytea[])
            as i(id, old_key, old_access, old_refresh, access, refresh)
          where c.id = i.id and c.key_id = i.old_key and c.access_token is not distinct from i.old_access
            and c.refresh_token is not distinct from i.old_refresh
          returning c.id`
        return batchResult(rows, limit, done.length, written.length, unreadable, (row) => row.id)
      }).pipe(orUnavailable)

    const pendingGrants = (after: string, limit: number) =>
      Effect.gen(function*() {
        const rows = yield* sql<{
          id: string
          userId: string
          platform: string
          accountId: string
          keyId: string
          accessToken: Uint8Array
          refreshToken: Uint8Array | null
        }>`select id, user_id, platform, account_id, key_id, access_token, refresh_token from oauth_pending_grants
          where key_id <> ${current} and id > ${after}::uuid order by id limit ${limit}`
        const { done, unreadable } = resealRows(rows, (row) =>
          Either.zipWith(
            Either.flatMap(reseal(row.keyId, row.accessToken, pendingContext(row.id, row, "access_token")), present),
            reseal(row.keyId, row.refreshToken, pendingContext(row.id, row, "refresh_token")),
            (access, refresh) => ({ id: row.id, keyId: row.keyId, oldAccess: buffer(row.accessToken), access, refresh })
          ))
        // A pending grant is never rewritten, only deleted: the old access token identifies the row as read.
        const written = done.length === 0 ? [] : yield* sql<{ id: string }>`update oauth_pending_grants g
          set access_token = i.access, refresh_token = i.refresh, key_id = ${current}
          from unnest(${done.map((d) => d.id)}::uuid[], ${done.map((d) => d.keyId)}::text[], ${done.map((d) => d.oldAccess)}::bytea[],
            ${done.map((d) => d.access)}::bytea[], ${done.map((d) => d.refresh)}::bytea[])
            as i(id, old_key, old_access, access, refresh)
          where g.id = i.id and g.key_id = i.old_key and g.access_token = i.old_access
          returning g.id`
        return batchResult(rows, limit, done.length, written.length, unreadable, (row) => row.id)
      }).pipe(orUnavailable)

    const authorizationRequests = (after: string, limit: number) =>
      Effect.gen(function*() {
        const rows = yield* sql<{ stateHash: Uint8Array; userId: string; platform: string; keyId: string; codeVerifier: Uint8Array }>`
          select state_hash, user_id, platform, key_id, code_verifier from oauth_states
          where code_verifier is not null and key_id is not null and key_id <> ${current}
            and encode(state_hash, 'hex') > ${after} order by encode(state_hash, 'hex') limit ${limit}`
        const { done, unreadable } = resealRows(rows, (row) =>
          Either.map(
            Either.flatMap(reseal(row.keyId, row.codeVerifier, stateContext(row.stateHash, row.userId, row.platform)), present),
            (verifier) => ({ hash: buffer(row.stateHash), keyId: row.keyId, old: buffer(row.codeVerifier), verifier })
          ))
        const written = done.length === 0 ? [] : yield* sql<{ n: number }>`update oauth_states s
          set code_verifier = i.verifier, key_id = ${current}
          from unnest(${done.map((d) => d.hash)}::bytea[], ${done.map((d) => d.keyId)}::text[], ${done.map((d) => d.old)}::bytea[],
            ${done.map((d) => d.verifier)}::bytea[]) as i(hash, old_key, old, verifier)
          where s.state_hash = i.hash and s.key_id = i.old_key and s.code_verifier = i.old
          returning 1 as n`
        return batchResult(rows, limit, done.length, written.length, unreadable, (row) => Buffer.from(row.stateHash).toString("hex"))
      }).pipe(orUnavailable)

    const batches: Record<SealedTable, { readonly start: string; readonly run: (after: string, limit: number) => Effect.Effect<BatchResult, unknown> }> = {
      connections: { start: "00000000-0000-0000-0000-000000000000", run: connections },
      pending_grants: { start: "00000000-0000-0000-0000-000000000000", run: pendingGrants },
      authorization_requests: { start: "", run: authorizationRequests }
    }

    /**
     * Re-seals every table, a batch at a time, telling `progress` after each; gives the totals.
     * Each batch is short and written whole or not at all, so an interrupted run loses nothing.
     */
    const rotate = (progress: (table: SealedTable, batch: BatchResult) => Effect.Effect<void>, limit = ROTATION_BATCH) =>
      Effect.gen(function*() {
        const totals = { resealed: 0, changed: 0, unreadable: 0 }
        for (const table of SEALED_TABLES) {
          const { run, start } = batches[table]
          let after: string | null = start
          while (after !== null) {
            const batch: BatchResult = yield* Effect.uninterruptible(run(after, limit))
            totals.resealed += batch.resealed
            totals.changed += batch.changed
            totals.unreadable += batch.unreadable
            yield* progress(table, batch)
            after = batch.next
          }
        }
        return totals
      })

    return { current, usage, remaining, rotate } as const
  })
}) {}
