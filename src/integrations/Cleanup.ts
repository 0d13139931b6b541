import { Cause, Clock, Duration, Effect, Layer, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { EventRepository } from "../db/EventRepository.js"
import { ConnectSessionRepository } from "../db/ConnectSessionRepository.js"
import { StateRepository } from "../db/StateRepository.js"
import { WebhookRepository } from "../db/WebhookRepository.js"
import { Grants } from "./Grants.js"

/** A pass at start, then one this long after the last one ended. */
export const cleanupSchedule = Schedule.spaced(Duration.minutes(1))

/**
 * Rows per statement, so that no statement is long whatever the backlog: on 2 million events
 * a batch of 5000 takes about 40 ms, 1000 expired states about 12 ms.
 */
export const STATES_BATCH = 1000
export const EVENTS_BATCH = 5000
export const DELIVERIES_BATCH = 5000

/**
 * Repeats `deleteBatch`, which deletes at most `limit` rows due at `now`, until a batch comes
 * back short; gives how many rows it deleted. `now` is read once, so a pass ends even while
 * more rows fall due. A batch stopped midway is finished rather than interrupted: it is
 * short, bounded by DB_STATEMENT_TIMEOUT, and an interrupted statement is cancelled over
 * another connection (which @effect/sql-pg waits up to 5 s for).
 */
export const inBatches = <E>(limit: number, deleteBatch: (now: Date, limit: number) => Effect.Effect<number, E>): Effect.Effect<number, E> =>
  Effect.flatMap(Clock.currentTimeMillis, (ms) =>
    Effect.iterate({ deleted: 0, full: true }, {
      while: (pass) => pass.full,
      body: (pass) =>
        Effect.map(Effect.uninterruptible(deleteBatch(new Date(ms), limit)), (n) => ({ deleted: pass.deleted + n, full: n >= limit }))
    })).pipe(Effect.map((pass) => pass.deleted))

const olderThan = (now: Date, age: Duration.Duration) => new Date(now.getTime() - Duration.toMillis(age))

/**
 * What each cleanup pass does, in this order, by the name its count has in the log line: each
 * entry takes the services it needs and gives one run of its job (everything due removed; how
 * many rows). Adding a job is one line here. Events older than EVENTS_RETENTION go first,
 * refreshed ones included, so refreshed events are kept the shorter of the two retentions.
 */
export const cleanupJobs = {
  expired_states: Effect.map(StateRepository, (states) => inBatches(STATES_BATCH, states.deleteExpired)),
  expired_connect_sessions: Effect.map(ConnectSessionRepository, (sessions) => inBatches(STATES_BATCH, sessions.deleteExpired)),
  // Grants nobody confirmed in time: revoked at the platform where it can, and deleted.
  expired_pending_grants: Effect.map(Grants, (grants) => grants.purgeExpired),
  old_events: Effect.zipWith(EventRepository, AppConfig, (events, { retention }) =>
    inBatches(EVENTS_BATCH, (now, limit) => events.deleteBefore(olderThan(now, retention.events), limit))),
  old_refreshed_events: Effect.zipWith(EventRepository, AppConfig, (events, { retention }) =>
    inBatches(EVENTS_BATCH, (now, limit) => events.deleteRefreshedBefore(olderThan(now, retention.refreshEvents), limit))),
  // Webhook deliveries made (WEBHOOK_RETENTION) or given up (WEBHOOK_FAILED_RETENTION) long enough ago.
  old_delivered_webhooks: Effect.zipWith(WebhookRepository, AppConfig, (deliveries, { webhooks }) =>
    inBatches(DELIVERIES_BATCH, (now, limit) => deliveries.deleteFinishedBefore("delivered", olderThan(now, webhooks.retention), limit))),
  old_failed_webhooks: Effect.zipWith(WebhookRepository, AppConfig, (deliveries, { webhooks }) =>
    inBatches(DELIVERIES_BATCH, (now, limit) => deliveries.deleteFinishedBefore("failed", olderThan(now, webhooks.failedRetention), limit)))
}

/** The jobs of a pass, ready to run, by name. Whatever a job fails with is logged, never raised. */
export type CleanupRuns = Readonly<Record<string, Effect.Effect<number, unknown>>>

/** A job that fails or dies is logged and counts as nothing deleted; the next job runs, and it runs again next pass. */
const logged = (name: string, run: Effect.Effect<number, unknown>) =>
  run.pipe(Effect.catchAllCause((cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.interrupt
      : Effect.as(Effect.logWarning("cleanup job failed; it runs again at the next pass", cause).pipe(Effect.annotateLogs({ job: name })), 0)
  ))

/**
 * One pass: every job in turn. Logs one line with the rows each job deleted, when any did;
 * gives those counts.
 */
export const cleanupPass = (runs: CleanupRuns) =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    const counts = yield* Effect.forEach(Object.entries(runs), ([name, run]) => Effect.map(logged(name, run), (n) => [name, n] as const))
    const deleted: Readonly<Record<string, number>> = Object.fromEntries(counts.filter(([, n]) => n > 0))
    if (counts.some(([, n]) => n > 0)) {
      const durationMs = (yield* Clock.currentTimeMillis) - started
      yield* Effect.logInfo("cleanup deleted").pipe(Effect.annotateLogs({ ...deleted, duration_ms: durationMs }))
    }
    return deleted
  }).pipe(Effect.withSpan("cleanup.pass", { root: true, captureStackTrace: false }))

/** Passes forever on `schedule`, the first one at once. */
export const runCleanup = (runs: CleanupRuns, schedule: Schedule.Schedule<unknown> = cleanupSchedule) =>
  Effect.repeat(cleanupPass(runs), schedule).pipe(Effect.asVoid)

/**
 * The cleanup as a fiber of the layer's scope: nothing else deletes expired authorisation
 * requests or old events, so every process that serves the API runs it, whatever
 * MONITOR_ENABLED says. Any number of processes may run it at once: each statement skips the
 * rows another is deleting.
 */
export const CleanupLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const runs = yield* Effect.all(cleanupJobs)
    yield* Effect.forkScoped(runCleanup(runs))
  })
)
