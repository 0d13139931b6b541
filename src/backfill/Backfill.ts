import { Chunk, Effect, Option, Stream } from "effect"
import type { Connection } from "../domain/Connection.js"
import type { FernetKey } from "../crypto/fernet.js"
import { Imports } from "../integrations/Imports.js"
import type { ImportRequest } from "../integrations/importPolicy.js"
import { Refresher } from "../integrations/Refresher.js"
import type { RefreshFailure } from "../integrations/refreshPolicy.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { type LegacyRow, type LegacyTable, legacyTables, type RowReading } from "./legacyTables.js"
import { type LegacySource, openLegacySource, ROWID } from "./sqliteSource.js"
import { countOutcome, emptyTally, emptyVerifyTally, type PlatformTally, skip, summaryTable, type VerifyTally, verifyTable } from "./tally.js"

export interface BackfillOptions {
  /** Legacy SQLite files. */
  readonly files: ReadonlyArray<string>
  readonly dryRun: boolean
  /** The platforms to bring over; empty: all four. */
  readonly platforms: ReadonlyArray<string>
  /** The keys that may open a platform's Fernet-encrypted token columns, tried in order. */
  readonly fernetKeys: (platform: string) => ReadonlyArray<FernetKey>
  /** Refresh (or validate) each connection brought over once, and report what still works. */
  readonly verify: boolean
}

/** Where the backfill tells what it is doing: the command draws a progress bar or prints lines. */
export interface BackfillReporter {
  readonly total: (rows: number) => Effect.Effect<void>
  readonly advance: (rows: number) => Effect.Effect<void>
  /** A problem of one row or one file: never a token or a secret. */
  readonly problem: (line: string) => Effect.Effect<void>
}

export interface BackfillReport {
  readonly tallies: ReadonlyMap<string, PlatformTally>
  readonly verified: ReadonlyMap<string, VerifyTally> | null
  /** Files that could not be read as legacy databases. */
  readonly unreadableFiles: number
  readonly summary: string
  /** Whether anything failed (a row, a file): the command then exits non-zero. */
  readonly failed: boolean
}

/** Rows read from SQLite per statement, and imports written per transaction. */
const PAGE = 5000
const BATCH = 500
const VERIFY_CONCURRENCY = 8

/** One legacy row's fate, once the rows of its user have been weighed against each other. */
type Decided =
  | { readonly _tag: "Import"; readonly request: ImportRequest; readonly rowid: unknown }
  | { readonly _tag: "Superseded" }
  | { readonly _tag: "Skipped"; readonly reason: string }
  | { readonly _tag: "Failed"; readonly problem: string; readonly rowid: unknown }

/**
 * Of one user's rows (the legacy code inserted a row per callback, with no unique key), the
 * newest active one is imported; the others are superseded, or skipped as inactive when none is
 * active.
 */
const decideUser = (rows: ReadonlyArray<{ readonly row: LegacyRow; readonly reading: RowReading }>): ReadonlyArray<Decided> => {
  let winner: number | undefined
  rows.forEach(({ reading }, i) => {
    if (reading._tag !== "Import" || !reading.active) return
    const best = winner === undefined ? undefined : rows[winner]?.reading
    if (best === undefined || (best._tag === "Import" && reading.changedAt >= best.changedAt)) winner = i
  })
  return rows.map(({ reading, row }, i): Decided => {
    switch (reading._tag) {
      case "Skipped":
        return reading
      case "Failed":
        return { _tag: "Failed", problem: reading.problem, rowid: row[ROWID] }
      case "Import":
        return i === winner
          ? { _tag: "Import", request: reading.request, rowid: row[ROWID] }
          : winner === undefined ? { _tag: "Skipped", reason: "inactive" } : { _tag: "Superseded" }
    }
  })
}

type Read = { readonly row: LegacyRow; readonly reading: RowReading }

const userOf = (row: LegacyRow) => (row["user_id"] === null || row["user_id"] === undefined ? `\u0000${String(row[ROWID])}` : String(row["user_id"]))

/**
 * The rows read so far, decided user by user, but for the rows of the last user when more
 * pages follow: those are carried to the next page.
 */
const decidePage = (table: LegacyTable, rows: ReadonlyArray<Read>, last: boolean): { readonly decided: ReadonlyArray<Decided>; readonly carry: ReadonlyArray<Read> } => {
  if (!table.manyPerUser) return { decided: rows.flatMap((r) => decideUser([r])), carry: [] }
  let cut = rows.length
  const tail = rows[rows.length - 1]
  if (!last && tail !== undefined) {
    const user = userOf(tail.row)
    while (cut > 0 && userOf(rows[cut - 1]?.row ?? {}) === user) cut--
  }
  const decided: Array<Decided> = []
  let start = 0
  for (let i = 1; i <= cut; i++) {
    if (i === cut || userOf(rows[i]?.row ?? {}) !== userOf(rows[start]?.row ?? {})) {
      decided.push(...decideUser(rows.slice(start, i)))
      start = i
    }
  }
  return { decided, carry: rows.slice(cut) }
}

/** What --verify makes of a refresh's failure: the connection is dead, the platform is flaky, or something else is wrong. */
const verdicts: Record<RefreshFailure["_tag"], "needsReauth" | "unavailable" | "failed"> = {
  InvalidGrant: "needsReauth",
  NotConnected: "needsReauth",
  ProviderUnavailable: "unavailable",
  RateLimited: "unavailable",
  CircuitOpen: "unavailable",
  RefreshInProgress: "unavailable",
  LeaseTooShort: "unavailable",
  InvalidClient: "failed",
  ProviderResponseInvalid: "failed",
  ConnectionUnreadable: "failed",
  DatabaseUnavailable: "failed",
  PlatformNotConfigured: "failed",
  UnknownPlatform: "failed"
}

/**
 * Brings the legacy SQLite databases' connections over through the import (the same code as
 * PUT .../import): each table streamed in pages, a user's rows weighed together, imports
 * written in batches. Read-only on the sources; a re-run finds everything unchanged.
 */
export const runBackfill = (options: BackfillOptions, reporter: BackfillReporter) =>
  Effect.gen(function*() {
    const imports = yield* Imports
    const refresher = yield* Refresher
    const registry = yield* ProviderRegistry
    const tables = legacyTables.filter((t) => options.platforms.length === 0 || options.platforms.includes(t.platform))
    const tallies = new Map(tables.map((t) => [t.platform, emptyTally()]))
    const verified = options.verify && !options.dryRun ? new Map(tables.map((t) => [t.platform, emptyVerifyTally()])) : null
    let unreadableFiles = 0

    const verifyOne = (connection: Connection) =>
      Effect.gen(function*() {
        const tally = verified?.get(connection.platform)
        if (tally === undefined) return
        if (connection.status !== "active") {
          tally.needsReauth++
          return
        }
        const definition = yield* Effect.option(registry.definition(connection.platform))
        const validates = Option.exists(definition, (d) => d.refresh === "none") || (connection.expiresAt === null && !connection.hasRefreshToken)
        const attempt: Effect.Effect<Connection, RefreshFailure> = validates ? refresher.validate(connection) : refresher.refresh(connection, { force: true })
        yield* attempt.pipe(
          Effect.match({
            onSuccess: () => void tally.alive++,
            onFailure: (error) => {
              const verdict = verdicts[error._tag]
              if (verdict === "failed") tally.failed.set(error._tag, (tally.failed.get(error._tag) ?? 0) + 1)
              else tally[verdict]++
            }
          })
        )
      })

    const importBatch = (source: LegacySource, table: LegacyTable, batch: ReadonlyArray<Decided>) =>
      Effect.gen(function*() {
        const tally = tallies.get(table.platform) ?? emptyTally()
        tally.found += batch.length
        const requests: Array<ImportRequest> = []
        for (const decided of batch) {
          switch (decided._tag) {
            case "Import":
              requests.push(decided.request)
              break
            case "Superseded":
              tally.superseded++
              break
            case "Skipped":
              skip(tally, decided.reason)
              break
            case "Failed":
              tally.failed++
              yield* reporter.problem(`${source.path}: ${table.table} row ${String(decided.rowid)}: ${decided.problem}`)
          }
        }
        if (requests.length > 0) {
          const results = yield* Effect.either(imports.importMany(requests, { write: !options.dryRun }))
          if (results._tag === "Left") {
            tally.failed += requests.length
            const why = results.left._tag === "InvalidImport" ? `${results.left.field}: ${results.left.message}` : results.left._tag
            yield* reporter.problem(`${source.path}: ${table.table}: ${requests.length} rows not imported: ${why}`)
          } else {
            for (const result of results.right) countOutcome(tally, result.outcome)
            if (verified !== null) {
              const connections = results.right.flatMap((r) => (r.outcome === "superseded" ? [] : Option.toArray(r.connection)))
              yield* Effect.forEach(connections, verifyOne, { concurrency: VERIFY_CONCURRENCY, discard: true })
            }
          }
        }
        yield* reporter.advance(batch.length)
      })

    /**
     * A table's rows, decided a page at a time. Rows come ordered by user, so a user's rows are
     * together; the last user of a page is carried to the next, which may hold more of its rows.
     * Two batches are imported at once (their users differ): reading and sealing the next batch
     * overlaps the statements of the one before.
     */
    const backfillTable = (source: LegacySource, table: LegacyTable) => {
      const keys = options.fernetKeys(table.platform)
      return Stream.paginateChunkEffect({ after: null as unknown, carry: [] as ReadonlyArray<Read> }, (state) =>
        Effect.map(source.page(table, state.after, PAGE), (page) => {
          const last = page.next === null
          const { carry, decided } = decidePage(table, [...state.carry, ...page.rows.map((row) => ({ row, reading: table.read(row, keys) }))], last)
          return [Chunk.fromIterable(decided), last ? Option.none() : Option.some({ after: page.next, carry })] as const
        })
      ).pipe(
        Stream.grouped(BATCH),
        Stream.mapEffect((batch) => importBatch(source, table, Chunk.toReadonlyArray(batch)), { concurrency: 2 }),
        Stream.runDrain
      )
    }

    const backfillFile = (file: string) =>
      Effect.scoped(Effect.gen(function*() {
        const source = yield* openLegacySource(file)
        const present = yield* source.tables(tables)
        yield* reporter.total(present.reduce((n, t) => n + t.rows, 0))
        for (const { table } of present) yield* backfillTable(source, table)
      })).pipe(
        Effect.catchTag("LegacySourceUnreadable", (e) =>
          Effect.zipRight(Effect.sync(() => void unreadableFiles++), reporter.problem(`${file}: ${e.message}`)))
      )

    for (const file of options.files) yield* backfillFile(file)

    const failed = unreadableFiles > 0 || [...tallies.values()].some((t) => t.failed > 0)
    const parts = [summaryTable(tallies, options.dryRun)]
    if (verified !== null) parts.push("", "Verified (each connection refreshed or validated once):", "", verifyTable(verified))
    if (unreadableFiles > 0) parts.push("", `${unreadableFiles} file(s) could not be read`)
    return { tallies, verified, unreadableFiles, summary: parts.join("\n"), failed } satisfies BackfillReport
  })
