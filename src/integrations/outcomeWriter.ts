import { Clock, Duration, Effect, Match, Metric, Option } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { ConnectionRepository } from "../db/ConnectionRepository.js"
import type { Outcome } from "../db/connectionWrites.js"
import type { OutcomeEvent } from "../db/EventRepository.js"
import type { Connection } from "../domain/Connection.js"
import { type DatabaseUnavailable, NotConnected, type ProviderError, ProviderUnavailable, RateLimited, RefreshInProgress } from "../domain/errors.js"
import { taggedBy } from "../observability/labels.js"
import { refreshes } from "../observability/metrics.js"
import type { IntegrationProvider } from "../registry/IntegrationProvider.js"
import { StatusChanges } from "../status/StatusChanges.js"
import { nextAttemptAt, retryingStore } from "./refreshPolicy.js"

/**
 * What a refresh or a validation does to its row once the platform has answered, or could
 * not: the outcome written under the lease (which the write releases) and announced through
 * StatusChanges, failures counted with their next attempt, dead connections marked.
 */
export const makeOutcomeWriter = Effect.gen(function*() {
  const connections = yield* ConnectionRepository
  const changes = yield* StatusChanges
  const app = yield* AppConfig
  const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

  const refreshesTagged = taggedBy(refreshes)
  const count = (platform: string, outcome: "success" | "failure" | "skipped", reason: string) =>
    Metric.increment(refreshesTagged({ platform, outcome, reason }))

  /**
   * What a write under the lease gave: the row as stored, or, for none, why not — the row
   * changed hands meanwhile: it was disconnected or revoked (NotConnected), or another
   * process holds it now (RefreshInProgress).
   */
  const written = (row: Connection, stored: Option.Option<Connection>) =>
    Effect.gen(function*() {
      if (Option.isSome(stored)) return stored.value
      const current = yield* connections.findById(row.id)
      if (Option.isSome(current) && current.value.status === "active") return yield* new RefreshInProgress({ platform: row.platform })
      return yield* new NotConnected({ platform: row.platform, status: Option.match(current, { onNone: () => "disconnected", onSome: (c) => c.status }) })
    })

  /** Writes an outcome of one row (retrying briefly if the database blinked) and announces it. */
  const store = (row: Connection, write: Effect.Effect<Option.Option<Connection>, DatabaseUnavailable>) =>
    retryingStore(write).pipe(
      Effect.tap((stored) => Option.isSome(stored) ? changes.publish(row.userId, row.platform) : Effect.void),
      Effect.flatMap((stored) => written(row, stored))
    )

  const outcome = (owner: string, t: Date, events: ReadonlyArray<OutcomeEvent>): Outcome => ({ owner, events, now: t })

  /**
   * A success after failures. `alerted`: connection.refresh_failing was sent for them, so the
   * application is told of the recovery too (connection.recovered); otherwise the event is
   * only in the audit trail.
   */
  const recovered = (row: Connection): ReadonlyArray<OutcomeEvent> =>
    row.refreshFailures > 0 ? [{ kind: "recovered", detail: { after_failures: row.refreshFailures, alerted: row.failingAnnounced } }] : []

  /**
   * Whether this failure is the one that tells the application its connection is failing:
   * the failures have lasted WEBHOOK_FAILING_AFTER since the first of them and this was not
   * said yet. Once per run of failures, however many attempts it takes.
   */
  const announcesFailing = (row: Connection, t: Date) =>
    !row.failingAnnounced && row.failingSince !== null &&
    t.getTime() - row.failingSince.getTime() >= Duration.toMillis(app.webhooks.failingAfter)

  /** A failure: counted, with its next attempt (see nextAttemptAt). */
  const recordFailure = (row: Connection, owner: string, error: { readonly _tag: string }, invalidGrant: boolean) =>
    Effect.gen(function*() {
      const t = yield* now
      const nextAttempt = nextAttemptAt({
        now: t,
        failures: row.refreshFailures,
        retryAfterMs: error instanceof RateLimited ? error.retryAfterMs : undefined,
        expiresAt: row.expiresAt,
        retryAfterMax: app.tokens.retryAfterMax,
        monitorInterval: app.monitor.interval
      })
      const failures = row.refreshFailures + 1
      const announceFailing = announcesFailing(row, t)
      const events: Array<OutcomeEvent> = [{
        kind: "refresh_failed",
        detail: { reason: error._tag, failures, next_attempt_at: nextAttempt.toISOString() }
      }]
      if (announceFailing) {
        events.push({
          kind: "refresh_failing",
          detail: { reason: error._tag, failures, failing_since: row.failingSince?.toISOString(), next_attempt_at: nextAttempt.toISOString() }
        })
      }
      return yield* store(
        row,
        connections.recordRefreshFailure(row.id, { error: error._tag, invalidGrant, nextAttemptAt: nextAttempt, announceFailing }, outcome(owner, t, events))
      )
    })

  const markDead = (row: Connection, owner: string, status: "needs_reauth" | "revoked", reason: string) =>
    Effect.gen(function*() {
      const t = yield* now
      const updated = yield* store(row, connections.markDead(row.id, status, reason, outcome(owner, t, [{ kind: status, detail: { reason } }])))
      yield* Effect.logWarning(`connection ${status}`).pipe(Effect.annotateLogs({ platform: row.platform, reason }))
      return updated
    })

  /**
   * A refresh the platform refused or could not answer: the failure recorded (or the
   * connection marked needs_reauth), and the error for the caller.
   */
  const refreshFailed = (row: Connection, owner: string, provider: IntegrationProvider, error: ProviderError) => {
    /** Counted, its next attempt recorded, and raised. */
    const retryLater = (failure: ProviderError) =>
      count(row.platform, "failure", failure._tag).pipe(Effect.zipRight(recordFailure(row, owner, failure, false)), Effect.zipRight(Effect.fail(failure)))
    return Match.valueTags(error, {
      // The platform is known to be down: not this connection's failure, a skip.
      CircuitOpen: (open) => Effect.zipRight(count(row.platform, "skipped", open._tag), Effect.fail(open)),
      InvalidGrant: (dead) =>
        Effect.gen(function*() {
          yield* count(row.platform, "failure", dead._tag)
          if (row.invalidGrantStreak + 1 >= provider.definition.invalidGrantTolerance) {
            yield* markDead(row, owner, "needs_reauth", "invalid_grant")
            return yield* dead
          }
          // Tolerated (Bing answers spurious ones): the connection stays active, so the caller is told to retry later.
          yield* recordFailure(row, owner, dead, true)
          return yield* new ProviderUnavailable({ platform: row.platform, reason: "invalid_grant_tolerated" })
        }),
      ProviderUnavailable: retryLater,
      RateLimited: retryLater,
      InvalidClient: retryLater,
      ProviderResponseInvalid: retryLater
    })
  }

  return { count, written, store, outcome, recovered, recordFailure, markDead, refreshFailed } as const
})
