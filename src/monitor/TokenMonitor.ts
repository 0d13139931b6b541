import { randomUUID } from "node:crypto"
import { Cause, Clock, Duration, Effect, Either, Layer, Metric, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { type Claimed, ConnectionRepository } from "../db/ConnectionRepository.js"
import { EventRepository } from "../db/EventRepository.js"
import type { Connection } from "../domain/Connection.js"
import { Refresher } from "../integrations/Refresher.js"
import { withTags } from "../observability/labels.js"
import { monitorConnections, monitorDue, monitorTickDuration, monitorTicks } from "../observability/metrics.js"

export interface TickReport {
  readonly due: number
  readonly refreshed: number
  readonly validated: number
  readonly warned: number
  /** Not attempted: the platform's circuit breaker is open, or the connection changed meanwhile. */
  readonly skipped: number
  readonly needsReauth: number
  /** Failures by reason (the error's tag); needs_reauth is not among them. */
  readonly failed: Readonly<Record<string, number>>
  readonly durationMs: number
}

type Outcome =
  | { readonly _tag: "refreshed" | "validated" | "skipped" | "needs_reauth" }
  | { readonly _tag: "failed"; readonly reason: string }

const failuresOf = (report: TickReport) => Object.values(report.failed).reduce((a, b) => a + b, 0)

/**
 * Keeps tokens fresh: every MONITOR_INTERVAL it claims due connections in batches (one
 * statement each, FOR UPDATE SKIP LOCKED, leased), refreshes them through the resilient
 * providers with bounded concurrency, validates tokens that do not expire, and warns once
 * about tokens that will expire without a way to refresh them. Several processes share the
 * work through the leases.
 */
export class TokenMonitor extends Effect.Service<TokenMonitor>()("Integrations/TokenMonitor", {
  effect: Effect.gen(function*() {
    const connections = yield* ConnectionRepository
    const events = yield* EventRepository
    const refresher = yield* Refresher
    const app = yield* AppConfig
    const settings = app.monitor
    const leaseMs = Duration.toMillis(app.tokens.leaseDuration)

    const classify = (
      result: Either.Either<Connection, { readonly _tag: string }>,
      success: "refreshed" | "validated",
      row: Connection
    ): Effect.Effect<Outcome> => {
      if (Either.isRight(result)) return Effect.succeed({ _tag: success })
      const reason = result.left._tag
      if (reason === "CircuitOpen" || reason === "NotConnected" || reason === "RefreshInProgress") return Effect.succeed({ _tag: "skipped" })
      const failed: Outcome = { _tag: "failed", reason }
      if (reason !== "InvalidGrant" && reason !== "ConnectionUnreadable") return Effect.succeed(failed)
      // A tolerated invalid_grant (Bing) leaves the connection active: a failure, not a dead connection.
      return connections.findById(row.id).pipe(
        Effect.map((now): Outcome =>
          now._tag === "Some" && (now.value.status === "needs_reauth" || now.value.status === "revoked") ? { _tag: "needs_reauth" } : failed
        ),
        Effect.orElseSucceed(() => failed)
      )
    }

    const process = (rows: ReadonlyArray<Claimed>, owner: string, kind: "refresh" | "validate") =>
      Effect.forEach(rows, (claimed) => {
        const row = claimed.connection
        return Effect.either(kind === "refresh" ? refresher.refreshHeld(claimed, owner) : refresher.validateHeld(claimed, owner)).pipe(
          Effect.flatMap((result) => classify(result, kind === "refresh" ? "refreshed" : "validated", row)),
          Effect.tap((outcome) =>
            Metric.increment(withTags(monitorConnections, {
              platform: row.platform,
              outcome: outcome._tag,
              reason: outcome._tag === "failed" ? outcome.reason : ""
            })))
        )
      }, { concurrency: settings.concurrency })

    /** Claims and processes batches until a claim comes back short. */
    const drain = (claim: (owner: string, now: Date, leaseUntil: Date) => Effect.Effect<ReadonlyArray<Claimed>, unknown>, kind: "refresh" | "validate", owner: string) =>
      Effect.gen(function*() {
        const outcomes: Array<Outcome> = []
        while (true) {
          const now = new Date(yield* Clock.currentTimeMillis)
          const rows = yield* claim(owner, now, new Date(now.getTime() + leaseMs))
          outcomes.push(...(yield* process(rows, owner, kind)))
          if (rows.length < settings.batch) return outcomes
        }
      })

    const tick = Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      const owner = `monitor:${randomUUID()}`
      const now = new Date(started)

      const warned = yield* connections.claimExpiryWarnings(now, new Date(started + Duration.toMillis(settings.expirationWarning)), settings.batch * 10)
      for (const row of warned) {
        yield* events.append({
          connectionId: row.id,
          userId: row.userId,
          platform: row.platform,
          kind: "expiring_soon",
          detail: { expires_at: row.expiresAt?.toISOString() ?? null, reason: "no_refresh_token" }
        }, now)
      }

      const refreshes = yield* drain(
        (o, t, lease) => connections.claimDueRefreshes(o, t, new Date(t.getTime() + Duration.toMillis(settings.refreshAhead)), lease, settings.batch),
        "refresh",
        owner
      )
      const validations = yield* drain(
        (o, t, lease) => connections.claimDueValidations(o, t, new Date(t.getTime() - Duration.toMillis(settings.validateInterval)), lease, settings.batch),
        "validate",
        owner
      )

      const outcomes = [...refreshes, ...validations]
      const failed: Record<string, number> = {}
      for (const o of outcomes) if (o._tag === "failed") failed[o.reason] = (failed[o.reason] ?? 0) + 1
      const report: TickReport = {
        due: outcomes.length,
        refreshed: outcomes.filter((o) => o._tag === "refreshed").length,
        validated: outcomes.filter((o) => o._tag === "validated").length,
        warned: warned.length,
        skipped: outcomes.filter((o) => o._tag === "skipped").length,
        needsReauth: outcomes.filter((o) => o._tag === "needs_reauth").length,
        failed,
        durationMs: (yield* Clock.currentTimeMillis) - started
      }
      yield* Metric.set(monitorDue, report.due)
      yield* Metric.update(monitorTickDuration, report.durationMs / 1000)
      yield* Metric.increment(withTags(monitorTicks, { result: "ok" }))
      yield* Effect.logInfo("monitor tick").pipe(Effect.annotateLogs({
        due: report.due,
        refreshed: report.refreshed,
        validated: report.validated,
        warned: report.warned,
        skipped: report.skipped,
        needs_reauth: report.needsReauth,
        failed: failuresOf(report),
        duration_ms: report.durationMs
      }))
      return report
    })

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

/** The monitor as a fiber of the layer's scope: it stops when the scope closes. */
export const MonitorLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const { monitor } = yield* AppConfig
    if (!monitor.enabled) return yield* Effect.logInfo("token monitor disabled (MONITOR_ENABLED=false)")
    const tokenMonitor = yield* TokenMonitor
    yield* Effect.forkScoped(tokenMonitor.run)
    yield* Effect.logInfo(`token monitor started: every ${Duration.format(monitor.interval)}, refreshing ${Duration.format(monitor.refreshAhead)} ahead`)
  })
)
