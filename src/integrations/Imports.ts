import * as SqlClient from "@effect/sql/SqlClient"
import { Clock, Duration, Effect, Option, Schema } from "effect"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { ConnectionRepository } from "../db/ConnectionRepository.js"
import { inTransaction } from "../db/Database.js"
import type { Connection } from "../domain/Connection.js"
import type { DatabaseUnavailable, UnknownPlatform } from "../domain/errors.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { StatusChanges, StatusChangesLive } from "../status/StatusChanges.js"
import { identityKey, type ImportOutcome, type ImportRequest, importOutcome, importToWrite, type StoredForImport } from "./importPolicy.js"

/** An import that cannot be stored as it is: the field, and why. Nothing of its batch is stored. */
export class InvalidImport extends Schema.TaggedError<InvalidImport>()(
  "InvalidImport",
  { field: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** How far ahead of this process's clock an import's `updated_at` may be (clocks differ a little). */
const CLOCK_SKEW = Duration.minutes(5)

export interface Imported {
  readonly outcome: ImportOutcome | "superseded"
  /** The row as it is now; none only in a dry run of a new connection, or for a superseded request. */
  readonly connection: Option.Option<Connection>
}

/**
 * Connections brought in from elsewhere, stored sealed as every connection is: the import API
 * and the legacy backfill both come through here. Idempotent: a request the row already
 * holds changes nothing and records no event; one that differs replaces the row only when it
 * is newer than the row's last change.
 */
export class Imports extends Effect.Service<Imports>()("Integrations/Imports", {
  dependencies: [ProviderRegistry.Default, ConnectionRepository.Default, StatusChangesLive],
  effect: Effect.gen(function*() {
    const registry = yield* ProviderRegistry
    const connections = yield* ConnectionRepository
    const changes = yield* StatusChanges
    const sql = yield* SqlClient.SqlClient

    /** Why a request cannot be imported, if it cannot. */
    const problemOf = (request: ImportRequest, now: Date): InvalidImport | undefined => {
      if (Option.isNone(request.accessToken) && Option.isNone(request.refreshToken)) {
        return new InvalidImport({ field: "access_token", message: "an import needs access_token, refresh_token or both" })
      }
      if (request.updatedAt !== null && request.updatedAt.getTime() > now.getTime() + Duration.toMillis(CLOCK_SKEW)) {
        return new InvalidImport({ field: "updated_at", message: "updated_at is in the future" })
      }
    }

    /**
     * Imports a batch in one transaction: the stored rows locked, each request decided
     * against its row, the ones to write written in one statement with their events. Of
     * several requests for one identity, the last wins; the others are superseded. With
     * `write: false` (a dry run), decides and writes nothing.
     */
    const importMany = (
      requests: ReadonlyArray<ImportRequest>,
      options: { readonly write: boolean } = { write: true },
      again = true
    ): Effect.Effect<ReadonlyArray<Imported>, InvalidImport | UnknownPlatform | DatabaseUnavailable> =>
      Effect.gen(function*() {
        const now = new Date(yield* Clock.currentTimeMillis)
        yield* Effect.forEach(new Set(requests.map((r) => r.platform)), registry.definition, { discard: true })
        const problem = requests.map((request) => problemOf(request, now)).find((p) => p !== undefined)
        if (problem !== undefined) return yield* problem
        const keyed = requests.map((request) => ({ request, key: identityKey(request) }))
        const last = new Map(keyed.map(({ key }, index) => [key, index]))
        const kept = keyed.filter(({ key }, index) => last.get(key) === index)

        const decided = yield* inTransaction(
          sql,
          Effect.gen(function*() {
            const stored = new Map<string, StoredForImport>(
              (yield* connections.lockForImport(kept.map((k) => k.request))).map((row) => [identityKey(row.connection), row])
            )
            const outcomes = kept.map(({ key, request }) => {
              const row = Option.fromNullable(stored.get(key))
              return { key, request, row, outcome: importOutcome(row, request, now) }
            })
            const toWrite = outcomes.flatMap(({ outcome, request }) =>
              outcome === "created" || outcome === "updated" ? [importToWrite(request, outcome, now)] : [])
            const written = options.write ? yield* connections.writeImports(toWrite, now) : []
            return { outcomes, written: new Map(written.map((row) => [identityKey(row), row])) }
          })
        )
        if (decided.written.size > 0) yield* changes.publishMany(decided.written.values())

        // New connections that another import created meanwhile were not written: decided again, against that row.
        const raced = options.write
          ? decided.outcomes.filter((o) => o.outcome === "created" && !decided.written.has(o.key))
          : []
        const redone = raced.length > 0 && again ? yield* importMany(raced.map((o) => o.request), options, false) : []
        const redoneByKey = new Map(raced.map((o, i) => [o.key, redone[i]]))

        const byKey = new Map(decided.outcomes.map((o) => [o.key, o]))
        return keyed.map(({ key }, index): Imported => {
          if (last.get(key) !== index) return { outcome: "superseded", connection: Option.none() }
          const retried = redoneByKey.get(key)
          if (retried !== undefined) return retried
          const decision = byKey.get(key)
          const connection = Option.orElse(Option.fromNullable(decided.written.get(key)), () =>
            Option.map(decision?.row ?? Option.none(), (row) => row.connection))
          return { outcome: decision?.outcome ?? "unchanged", connection }
        })
      })

    return {
      importMany,
      importOne: (request: ImportRequest) =>
        Effect.map(importMany([request]), (results) => results[0] ?? { outcome: "unchanged" as const, connection: Option.none() })
    } as const
  })
}) {}
