import { closeSync, openSync, readSync } from "node:fs"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Data, Effect } from "effect"
import type { LegacyRow, LegacyTable } from "./legacyTables.js"

/** The column each page's rows carry their SQLite rowid in (rows are reported by it). */
export const ROWID = "__legacy_rowid"

export class LegacySourceUnreadable extends Data.TaggedError("LegacySourceUnreadable")<{ readonly message: string }> {}

/** Where a table was read up to: the last row's user and rowid (rows come ordered by both). */
type Cursor = readonly [user: string, rowid: number]

export interface LegacySource {
  readonly path: string
  /** The tables among `wanted` that the file has, with their row counts. */
  readonly tables: (wanted: ReadonlyArray<LegacyTable>) => Effect.Effect<ReadonlyArray<{ readonly table: LegacyTable; readonly rows: number }>, LegacySourceUnreadable>
  /** Up to `size` rows after `after` (from the start when null), ordered by user then rowid; `next` null at the end. */
  readonly page: (table: LegacyTable, after: unknown, size: number) => Effect.Effect<{ readonly rows: ReadonlyArray<LegacyRow>; readonly next: Cursor | null }, LegacySourceUnreadable>
}

const SQLITE_HEADER = "SQLite format 3\u0000"

/** Whether the file starts as every SQLite database does: a corrupt or foreign file is told apart before any driver reads it. */
const checkHeader = (path: string) =>
  Effect.try({
    try: () => {
      const fd = openSync(path, "r")
      try {
        const header = Buffer.alloc(16)
        const read = readSync(fd, header, 0, 16, 0)
        return read === 16 && header.toString("latin1") === SQLITE_HEADER
      } finally {
        closeSync(fd)
      }
    },
    catch: (e) => new LegacySourceUnreadable({ message: `cannot be opened (${e instanceof Error && "code" in e ? String(e.code) : "error"})` })
  }).pipe(Effect.filterOrFail((ok) => ok, () => new LegacySourceUnreadable({ message: "is not an SQLite database" })))

const isCursor = (value: unknown): value is Cursor => Array.isArray(value) && value.length === 2

/**
 * A legacy database opened read-only (and without switching it to WAL, which would write to
 * it): each table is read in pages ordered by user and rowid, so a table is never held whole
 * and a user's rows arrive together.
 */
export const openLegacySource = (path: string) =>
  Effect.gen(function*() {
    yield* checkHeader(path)
    // The driver throws when it cannot open the file: a defect of make, the file's problem here.
    const sql = yield* SqliteClient.make({ filename: path, readonly: true, disableWAL: true }).pipe(
      Effect.provide(Reactivity.layer),
      Effect.catchAllDefect(() => new LegacySourceUnreadable({ message: "cannot be opened as an SQLite database" }))
    )
    const unreadable = (what: string) => () => new LegacySourceUnreadable({ message: `${what} cannot be read (a damaged database?)` })

    const source: LegacySource = {
      path,
      tables: (wanted) =>
        Effect.gen(function*() {
          const names = yield* sql<{ readonly name: string }>`select name from sqlite_master where type = 'table'`.pipe(
            Effect.mapError(unreadable("its list of tables"))
          )
          const present = new Set(names.map((n) => n.name))
          return yield* Effect.forEach(wanted.filter((t) => present.has(t.table)), (table) =>
            sql<{ readonly n: number }>`select count(*) as n from ${sql(table.table)}`.pipe(
              Effect.map((rows) => ({ table, rows: Number(rows[0]?.n ?? 0) })),
              Effect.mapError(unreadable(table.table))
            ))
        }),
      page: (table, after, size) =>
        Effect.gen(function*() {
          const name = sql(table.table)
          const user = sql.literal("coalesce(user_id, '')")
          const rows = yield* (isCursor(after)
            ? sql<LegacyRow>`select rowid as ${sql(ROWID)}, * from ${name} where (${user}, rowid) > (${after[0]}, ${after[1]})
                order by ${user}, rowid limit ${size}`
            : sql<LegacyRow>`select rowid as ${sql(ROWID)}, * from ${name} order by ${user}, rowid limit ${size}`).pipe(
              Effect.mapError(unreadable(table.table))
            )
          const last = rows[rows.length - 1]
          const next: Cursor | null = rows.length < size || last === undefined
            ? null
            : [typeof last["user_id"] === "string" ? last["user_id"] : last["user_id"] == null ? "" : String(last["user_id"]), Number(last[ROWID])]
          return { rows, next }
        })
    }
    return source
  })
