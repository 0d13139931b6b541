import { randomUUID } from "node:crypto"
import { Cause, Clock, Duration, Effect, Either, Exit, Layer, Metric, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { type Claimed, ConnectionRepository } from "../db/ConnectionRepository.js"
import { StateRepository } from "../db/StateRepository.js"
import type { Connection } from "../domain/Connection.js"
import type { DatabaseUnavailable } from "../domain/errors.js"
import { Refresher } from "../integrations/Refresher.js"
import { taggedBy, withTags } from "../observability/labels.js"
import { monitorConnections, monitorDue, monitorTickDuration, monitorTicks } from "../observability/metrics.js"

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
  /** Expired authorisation requests (oauth_states) deleted. */
  readonly purgedStates: number
  readonly durationMs: number
}

type Outcome =
  | { readonly _tag: "refreshed" | "validated" | "skipped" | "needs_reauth" }
  | { readonly _tag: "failed"; readonly reason: string }

/** Errors that mean the row was not attempted: its state is unchanged and it is due again. */
const skips = new Set(["CircuitOpen", "NotConnected", "RefreshInProgress", "LeaseTooShort"])

const classify = (result: Either.Either<Connection, { readonly _tag: string }>, success: "refreshed" | "validated"): Outcome => {
  if (Either.isRight(result)) return { _tag: success }
  const reason = result.left._tag
  if (skips.has(reason)) return { _tag: "skipped" }
  // The Refresher raises these only once it has marked the connection needs_reauth or revoked.
  if (reason === "InvalidGrant" || reason === "ConnectionUnreadable") return { _tag: "needs_reauth" }
  return { _tag: "failed", reason }
}

const connectionsTagged = taggedBy(monitorConnections)

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
    const states = yield* StateRepository
    const refresher = yield* Refresher
    const app = yield* AppConfig
    const settings = app.monitor
    const leaseMs = Duration.toMillis(app.tokens.leaseDuration)

    /** The stored outcome of a row whose platform call has ended (or that failed before calling). */
    const settled = (step: Either.Either<Effect.Effect<Connection, { readonly _tag: string }>, { readonly _tag: string }>): Effect.Effect<Either.Either<Connection, { readonly _tag: string }>> =>
      Either.isLeft(step) ? Effect.succeed(Either.left(step.left)) : Effect.either(step.right)

    /**
     * Rows claimed by this pass and not yet settled by a stored outcome. A row skipped keeps
     * its lease until the pass ends (so no claim of this pass takes it again); the pass then
     * releases them all in one statement, and the next pass finds them due.
     */
    const process = (rows: ReadonlyArray<Claimed>, owner: string, kind: "refresh" | "validate", held: Set<string>) =>
      Effect.gen(function*() {
        // MONITOR_CONCURRENCY bounds the calls to platforms; their outcomes are stored meanwhile, and awaited below.
        const inFlight: Array<Effect.Effect<unknown>> = []
        const track = (rest: Effect.Effect<unknown>) => {
          inFlight.push(rest)
        }
        const started = yield* Effect.forEach(rows, (claimed) =>
          Effect.map(
            Effect.either(kind === "refresh" ? refresher.refreshHeld(claimed, owner, track) : refresher.validateHeld(claimed, owner)),
            (step) => [claimed.connection, step] as const
          ), { concurrency: settings.concurrency }).pipe(
          // Interrupted: the refreshes the platforms have answered are stored before the pass releases its leases.
          Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Effect.forEach(inFlight, (rest) => rest, { discard: true }))
        )
        return yield* Effect.forEach(started, ([row, step]) =>
          settled(step).pipe(
            Effect.map((result) => classify(result, kind === "refresh" ? "refreshed" : "validated")),
            Effect.tap((outcome) =>
              Effect.sync(() => {
                if (outcome._tag !== "skipped" && outcome._tag !== "failed") held.delete(row.id)
              })),
            Effect.tap((outcome) =>
              Metric.increment(connectionsTagged({
                platform: row.platform,
                outcome: outcome._tag,
                reason: outcome._tag === "failed" ? outcome.reason : ""
              })))
          ))
      })

    type Claim = (owner: string, now: Date, leaseUntil: Date) => Effect.Effect<ReadonlyArray<Claimed>, DatabaseUnavailable>

    /** Claims and processes batches until a claim comes back short. */
    const drain = (claim: Claim, kind: "refresh" | "validate", owner: string, held: Set<string>) =>
      Effect.gen(function*() {
        const outcomes: Array<Outcome> = []
        while (true) {
          const now = new Date(yield* Clock.currentTimeMillis)
          const rows = yield* claim(owner, now, new Date(now.getTime() + leaseMs))
          for (const r of rows) held.add(r.connection.id)
          outcomes.push(...(yield* process(rows, owner, kind, held)))
          if (rows.length < settings.batch) return outcomes
        }
      })

    const warn = (now: Date) =>
      Effect.gen(function*() {
        const warned = yield* connections.claimExpiryWarnings(now, new Date(now.getTime() + Duration.toMillis(settings.expirationWarning)), settings.batch * 10)
        const byPlatform = new Map<string, number>()
        for (const row of warned) byPlatform.set(row.platform, (byPlatform.get(row.platform) ?? 0) + 1)
        for (const [platform, n] of byPlatform) {
          yield* Metric.incrementBy(connectionsTagged({ platform, outcome: "warned", reason: "" }), n)
        }
        return warned.length
      })

    const tick: Effect.Effect<TickReport, DatabaseUnavailable> = Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      const owner = `monitor:${randomUUID()}`
      const now = new Date(started)
      const held = new Set<string>()

      const purgedStates = yield* states.purgeExpired(now)
      const warned = yield* warn(now)
      const [refreshes, validations] = yield* Effect.gen(function*() {
        const refreshes = yield* drain(
          (o, t, lease) => connections.claimDueRefreshes(o, t, new Date(t.getTime() + Duration.toMillis(settings.refreshAhead)), lease, settings.batch),
          "refresh",
          owner,
          held
        )
        const validations = yield* drain(
          (o, t, lease) => connections.claimDueValidations(o, t, new Date(t.getTime() - Duration.toMillis(settings.validateInterval)), lease, settings.batch),
          "validate",
          owner,
          held
        )
        return [refreshes, validations] as const
      }).pipe(
        // However the pass ends; rows in flight have finished by then (a refresh runs to its end).
        Effect.ensuring(Effect.suspend(() => Effect.ignore(connections.releaseLeases([...held], owner))))
      )

      const outcomes = [...refreshes, ...validations]
      const failed: Record<string, number> = {}
      for (const o of outcomes) if (o._tag === "failed") failed[o.reason] = (failed[o.reason] ?? 0) + 1
      const report: TickReport = {
        due: outcomes.length,
        refreshed: outcomes.filter((o) => o._tag === "refreshed").length,
        validated: outcomes.filter((o) => o._tag === "validated").length,
        warned,
        skipped: outcomes.filter((o) => o._tag === "skipped").length,
        needsReauth: outcomes.filter((o) => o._tag === "needs_reauth").length,
        failed,
        purgedStates,
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
        failed_by_reason: report.failed,
        purged_states: report.purgedStates,
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
