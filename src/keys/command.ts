import { Console, Data, Effect } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { makeTerminalReporter } from "../backfill/progress.js"
import { KeyRotation, type KeyUsage, SEALED_TABLES } from "../db/KeyRotation.js"

/** Rows that no configured key opens were found: they are left as they are, and the command says so. */
export class RotationIncomplete extends Data.TaggedError("RotationIncomplete")<{ readonly unreadable: number }> {
  override get message() {
    return `${this.unreadable} row(s) could not be opened with any key of TOKEN_ENCRYPTION_KEYS and are still sealed under their old key`
  }
}

const LABELS: Record<(typeof SEALED_TABLES)[number], string> = {
  connections: "connections",
  pending_grants: "pending grants",
  authorization_requests: "authorization requests"
}

/** Rows per key id, every configured key listed (a key with none left may be removed), then any other in use. */
export const usageTable = (usage: ReadonlyArray<KeyUsage>, configured: ReadonlyArray<string>): string => {
  const ids = [...configured, ...new Set(usage.map((u) => u.keyId).filter((id) => !configured.includes(id)))]
  const header = ["key id", "role", ...SEALED_TABLES.map((t) => LABELS[t])]
  const rows = ids.map((id, i) => [
    id,
    i === 0 ? "current (seals)" : configured.includes(id) ? "opens only" : "NOT CONFIGURED",
    ...SEALED_TABLES.map((t) => String(usage.find((u) => u.keyId === id && u.table === t)?.rows ?? 0))
  ])
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ").trimEnd()
  return [line(header), ...rows.map(line)].join("\n")
}

/** The rows per key id as they are now, against the configured keys. */
const printUsage = Effect.gen(function*() {
  const rotation = yield* KeyRotation
  const { encryptionKeys } = yield* AppConfig
  yield* Console.log(usageTable(yield* rotation.usage, encryptionKeys.map((k) => k.id)))
})

/** `rotate-keys --status`: rows per key id. */
export const keyStatus = printUsage

/**
 * `rotate-keys`: every secret re-sealed under the first key of TOKEN_ENCRYPTION_KEYS, online,
 * with a progress bar on a terminal; then the rows per key id, so that a key left with none can
 * be removed from the list.
 */
export const rotateKeys = Effect.gen(function*() {
  const rotation = yield* KeyRotation
  const { finish, reporter } = yield* makeTerminalReporter(process.stderr, "rotate-keys")
  yield* reporter.total(yield* rotation.remaining)
  const totals = yield* rotation.rotate((_, batch) => reporter.advance(batch.resealed + batch.changed + batch.unreadable))
  yield* finish
  yield* Console.log(
    `re-sealed under ${rotation.current}: ${totals.resealed}; rewritten meanwhile by the service (already current): ${totals.changed}; unreadable: ${totals.unreadable}`
  )
  yield* printUsage
  if (totals.unreadable > 0) return yield* new RotationIncomplete({ unreadable: totals.unreadable })
})
