import { Effect, Either, Match, Metric } from "effect"
import type { Connection } from "../domain/Connection.js"
import type { RefreshFailure } from "../integrations/refreshPolicy.js"
import { taggedBy } from "../observability/labels.js"
import { monitorConnections } from "../observability/metrics.js"

/** What became of one row of a pass. */
export type Outcome =
  | { readonly _tag: "refreshed" | "validated" | "skipped" | "needs_reauth" }
  | { readonly _tag: "failed"; readonly reason: RefreshFailure["_tag"] }

const skipped: Outcome = { _tag: "skipped" }
const needsReauth: Outcome = { _tag: "needs_reauth" }
const failed = (error: RefreshFailure): Outcome => ({ _tag: "failed", reason: error._tag })

/**
 * Each way a refresh can fail, decided once: a new failure must be sorted here before the
 * service compiles.
 */
const outcomeOfFailure = Match.type<RefreshFailure>().pipe(
  Match.tagsExhaustive({
    // Not attempted, the row unchanged and due again: the platform is known to be down, the
    // connection changed meanwhile, another process holds it, or its lease ran too short.
    CircuitOpen: () => skipped,
    NotConnected: () => skipped,
    RefreshInProgress: () => skipped,
    LeaseTooShort: () => skipped,
    // Raised only once the connection was marked needs_reauth (or revoked).
    InvalidGrant: () => needsReauth,
    ConnectionUnreadable: () => needsReauth,
    ProviderUnavailable: failed,
    RateLimited: failed,
    InvalidClient: failed,
    ProviderResponseInvalid: failed,
    DatabaseUnavailable: failed,
    PlatformNotConfigured: failed,
    UnknownPlatform: failed
  })
)

export const outcomeOf = (result: Either.Either<Connection, RefreshFailure>, success: "refreshed" | "validated"): Outcome =>
  Either.isRight(result) ? { _tag: success } : outcomeOfFailure(result.left)

/**
 * Whether the row's lease was released by the statement that stored its outcome. Skipped
 * rows, and failures stored nowhere, keep their lease until the pass ends, so that no claim
 * of the pass takes them again; the pass then releases them together.
 */
export const releasedByOutcome = (outcome: Outcome) => outcome._tag !== "skipped" && outcome._tag !== "failed"

/** One row's outcome, as a pass reports it. */
export interface RowOutcome {
  readonly id: string
  readonly platform: string
  readonly outcome: Outcome
}

/** A pass's counts: of outcomes, of failures by reason, and of rows by metric labels. */
export interface Tally {
  readonly refreshed: number
  readonly validated: number
  readonly skipped: number
  readonly needsReauth: number
  readonly failed: Readonly<Record<string, number>>
  readonly due: number
  readonly byLabels: ReadonlyMap<string, { readonly platform: string; readonly outcome: string; readonly reason: string; readonly n: number }>
}

/** The counts of a pass's rows, folded. */
export const tallyOf = (rows: Iterable<RowOutcome>): Tally => {
  const counts = { refreshed: 0, validated: 0, skipped: 0, needsReauth: 0, due: 0 }
  const failedBy: Record<string, number> = {}
  const byLabels = new Map<string, { readonly platform: string; readonly outcome: string; readonly reason: string; readonly n: number }>()
  for (const { outcome, platform } of rows) {
    counts.due++
    const reason = outcome._tag === "failed" ? outcome.reason : ""
    switch (outcome._tag) {
      case "refreshed":
        counts.refreshed++
        break
      case "validated":
        counts.validated++
        break
      case "skipped":
        counts.skipped++
        break
      case "needs_reauth":
        counts.needsReauth++
        break
      case "failed":
        failedBy[reason] = (failedBy[reason] ?? 0) + 1
        break
    }
    const key = `${platform}\u0000${outcome._tag}\u0000${reason}`
    const found = byLabels.get(key)
    byLabels.set(key, { platform, outcome: outcome._tag, reason, n: (found?.n ?? 0) + 1 })
  }
  return { ...counts, failed: failedBy, byLabels }
}

/** Two passes' counts as one. */
export const sumTallies = (a: Tally, b: Tally): Tally => {
  const failedBy: Record<string, number> = { ...a.failed }
  for (const [reason, n] of Object.entries(b.failed)) failedBy[reason] = (failedBy[reason] ?? 0) + n
  const byLabels = new Map(a.byLabels)
  for (const [key, row] of b.byLabels) byLabels.set(key, { ...row, n: (byLabels.get(key)?.n ?? 0) + row.n })
  return {
    refreshed: a.refreshed + b.refreshed,
    validated: a.validated + b.validated,
    skipped: a.skipped + b.skipped,
    needsReauth: a.needsReauth + b.needsReauth,
    due: a.due + b.due,
    failed: failedBy,
    byLabels
  }
}

export const failuresIn = (failedBy: Readonly<Record<string, number>>) => Object.values(failedBy).reduce((a, b) => a + b, 0)

const connectionsTagged = taggedBy(monitorConnections)

/** Adds a pass's counts to the metrics, once per set of labels. */
export const recordTally = (tally: Tally) =>
  Effect.forEach(tally.byLabels.values(), ({ n, ...tags }) => Metric.incrementBy(connectionsTagged(tags), n), { discard: true })

/** Connections warned about, by platform, in the same metric. */
export const recordWarned = (platform: string, n: number) => Metric.incrementBy(connectionsTagged({ platform, outcome: "warned", reason: "" }), n)
