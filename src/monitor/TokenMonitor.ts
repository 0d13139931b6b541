import { randomUUID } from "node:crypto"
import { Cause, Clock, Duration, Effect, Either, Layer, Metric, Schedule, type Scope } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { MonitorPassRepository } from "../db/MonitorPassRepository.js"
import { ConnectionRepository } from "../db/ConnectionRepository.js"
import type { DatabaseUnavailable } from "../domain/errors.js"
import { Refresher } from "../integrations/Refresher.js"
import { withTags } from "../observability/labels.js"
import { monitorDue, monitorTickDuration, monitorTicks } from "../observability/metrics.js"
import { failuresIn, recordTally, recordWarned, sumTallies, tallyOf } from "./outcomes.js"
import { type Attempt, type Claim, makeBatchedStore, runPass } from "./pass.js"

/** Refresh results stored per statement, at most. */
const STORE_BATCH = 100

export interface TickReport {
  readonly due: number
  readonly refreshed: number
  readonly validated: number
  readonly warned: number
  /**
   * Not attempted: the platform's circuit breaker is open, the claim's lease had too little
   * time left for the platform's longest operation, or the connection changed meanwhile.
   */
  readonly skipped: number
  readonly needsReauth: number
  /** Failures by reason (the error's tag); needs_reauth is not among them. */
  readonly failed: Readonly<Record<string, number>>
  readonly durationMs: number
}

const failuresOf = (report: TickReport) => failuresIn(report.failed)

/**
 * Keeps tokens fresh: every MONITOR_INTERVAL it claims due connections in batches (one
 * statement each, FOR UPDATE SKIP LOCKED, leased), refreshes them through the resilient
 * providers with bounded concurrency, validates tokens that do not expire, and warns once
 * about tokens that will expire without a way to refresh them. Several processes share the
 * work through the leases.
 */
export class TokenMonitor extends Effect.Service<TokenMonitor>()("Integrations/TokenMonitor", {
  dependencies: [ConnectionRepository.Default, Refresher.Default, MonitorPassRepository.Default],
  effect: Effect.gen(function*() {
    const connections = yield* ConnectionRepository
    const passes = yield* MonitorPassRepository
    const refresher = yield* Refresher
    const app = yield* AppConfig
    const settings = app.monitor

    const passSettings = { batch: settings.batch, concurrency: settings.concurrency, leaseDuration: app.tokens.leaseDuration }

    /** A refresh row: the platform's answer, then its store, batched with the other workers' answers. */
    const refreshAttempt = (owner: string) => (scope: Scope.Scope) =>
      Effect.map(
        makeBatchedStore(refresher.storeClaimed, { max: STORE_BATCH, linger: settings.storeLinger }, scope),
        (store): Attempt => (claimed) =>
          Effect.flatMap(Effect.either(refresher.refreshClaimed(claimed, owner)), (answered) =>
            Either.isLeft(answered) ? Effect.succeed(Either.left(answered.left)) : store(answered.right))
      )

    const validateAttempt = (owner: string) => (_scope: Scope.Scope) =>
      Effect.succeed<Attempt>((claimed) => Effect.either(refresher.validateClaimed(claimed, owner)))

    /** A pass, and what follows it however it ends: its counts recorded, the leases it still holds given back together. */
    const pass = (claim: Claim, owner: string, makeAttempt: (scope: Scope.Scope) => Effect.Effect<Attempt>, success: "refreshed" | "validated") =>
      runPass(claim, owner, passSettings, makeAttempt, success, (result) =>
        Effect.gen(function*() {
          const tally = tallyOf(result.rows)
          yield* recordTally(tally)
          if (result.unreleased.length > 0) yield* Effect.ignore(connections.releaseLeases(result.unreleased, owner))
          return tally
        }))

    const warn = (now: Date) =>
      Effect.gen(function*() {
        const warned = yield* connections.claimExpiryWarnings(now, new Date(now.getTime() + Duration.toMillis(settings.expirationWarning)), settings.batch * 10)
        const byPlatform = new Map<string, number>()
        for (const row of warned) byPlatform.set(row.platform, (byPlatform.get(row.platform) ?? 0) + 1)
        yield* Effect.forEach(byPlatform, ([platform, n]) => recordWarned(platform, n), { discard: true })
        return warned.length
      })

    const tick: Effect.Effect<TickReport, DatabaseUnavailable> = Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      const owner = `monitor:${randomUUID()}`
      const warned = yield* warn(new Date(started))
      const refreshed = yield* pass(
        (o, t, lease) => connections.claimDueRefreshes(o, t, new Date(t.getTime() + Duration.toMillis(settings.refreshAhead)), lease, settings.batch),
        owner,
        refreshAttempt(owner),
        "refreshed"
      )
      const tally = yield* pass(
        (o, t, lease) => connections.claimDueValidations(o, t, new Date(t.getTime() - Duration.toMillis(settings.validateInterval)), lease, settings.batch),
        owner,
        validateAttempt(owner),
        "validated"
      ).pipe(Effect.map((validated) => sumTallies(refreshed, validated)))

      const report: TickReport = {
        due: tally.due,
        refreshed: tally.refreshed,
        validated: tally.validated,
        warned,
        skipped: tally.skipped,
        needsReauth: tally.needsReauth,
        failed: tally.failed,
        durationMs: (yield* Clock.currentTimeMillis) - started
      }
      // What the log line and `status` show of the pass.
      const figures = {
        due: report.due,
        refreshed: report.refreshed,
        validated: report.validated,
        warned: report.warned,
        skipped: report.skipped,
        needs_reauth: report.needsReauth,
        failed: failuresOf(report),
        failed_by_reason: report.failed
      }
      // For `status`: a pass that cannot be recorded is still a pass.
      yield* passes.record(new Date(started + report.durationMs), report.durationMs, figures).pipe(Effect.catchAll((e) => Effect.logWarning("could not record the monitor pass").pipe(Effect.annotateLogs("error", e.message))))
      yield* Metric.set(monitorDue, report.due)
      yield* Metric.update(monitorTickDuration, report.durationMs / 1000)
      yield* Metric.increment(withTags(monitorTicks, { result: "ok" }))
      yield* Effect.logInfo("monitor tick").pipe(Effect.annotateLogs({ ...figures, duration_ms: report.durationMs }))
      yield* Effect.annotateCurrentSpan({ ...figures, failed_by_reason: JSON.stringify(figures.failed_by_reason) })
      return report
    }).pipe(Effect.withSpan("monitor.pass", { root: true, captureStackTrace: false }))

    /** A tick whose failure, or defect, is logged and counted, never raised: the daemon outlives it. */
    const safeTick = tick.pipe(
      Effect.asVoid,
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.failCause(cause)
          : Metric.increment(withTags(monitorTicks, { result: "failed" })).pipe(
            Effect.zipRight(Effect.logError("monitor tick failed; the next tick runs as scheduled", cause))
          )
      )
    )

    return {
      tick,
      /** Ticks forever on MONITOR_INTERVAL. */
      run: Effect.repeat(safeTick, Schedule.fixed(settings.interval)).pipe(Effect.asVoid),
      failuresOf
    } as const
  })
}) {}

/**
 * The monitor as a fiber of the layer's scope: it stops when the scope closes. Beside the API
 * it runs unless MONITOR_ENABLED=false; the `monitor` command runs it regardless (`always`).
 */
export const monitorLayer = (options: { readonly always: boolean }) =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const { monitor } = yield* AppConfig
      if (!options.always && !monitor.enabled) return yield* Effect.logInfo("token monitor disabled (MONITOR_ENABLED=false)")
      const tokenMonitor = yield* TokenMonitor
      yield* Effect.forkScoped(tokenMonitor.run)
      yield* Effect.logInfo(`token monitor started: every ${Duration.format(monitor.interval)}, refreshing ${Duration.format(monitor.refreshAhead)} ahead`)
    })
  )

/** The monitor beside the API. */
export const MonitorLive = monitorLayer({ always: false })
