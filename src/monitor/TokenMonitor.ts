import { randomUUID } from "node:crypto"
import { Cause, Clock, Deferred, Duration, Effect, Either, Exit, Fiber, Layer, Metric, Option, Schedule, Scope } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { type Claimed, ConnectionRepository } from "../db/ConnectionRepository.js"
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

/** Counts of a pass's outcomes, and of its rows by (platform, outcome, reason) for the metrics. */
class Tally {
  readonly outcomes = { refreshed: 0, validated: 0, skipped: 0, needs_reauth: 0, failed: 0 }
  readonly failed: Record<string, number> = {}
  private readonly byLabels = new Map<string, { readonly platform: string; readonly outcome: string; readonly reason: string; n: number }>()

  add(platform: string, outcome: Outcome) {
    this.outcomes[outcome._tag]++
    const reason = outcome._tag === "failed" ? outcome.reason : ""
    if (outcome._tag === "failed") this.failed[reason] = (this.failed[reason] ?? 0) + 1
    const key = `${platform}\u0000${outcome._tag}\u0000${reason}`
    const found = this.byLabels.get(key)
    if (found === undefined) this.byLabels.set(key, { platform, outcome: outcome._tag, reason, n: 1 })
    else found.n++
  }

  get due() {
    return Object.values(this.outcomes).reduce((a, b) => a + b, 0)
  }

  /** Adds the counts to the metrics, once per set of labels. */
  get record(): Effect.Effect<void> {
    return Effect.forEach(this.byLabels.values(), ({ n, ...tags }) => Metric.incrementBy(connectionsTagged(tags), n), { discard: true })
  }
}

/**
 * The rows of a pass, handed out one at a time to its workers. Rows are claimed a batch at
 * a time (one statement each); the next batch is claimed while the last rows of the one
 * before are being worked on, so the workers never wait for a claim mid-pass. It runs dry
 * once a claim comes back short, fails, or the pass is stopped.
 */
interface Feed {
  /** The next row; none when the feed has run dry. */
  readonly next: Effect.Effect<Option.Option<Claimed>>
  /** Hands out no more rows; the rows of a claim still in flight are kept (held) but not handed out. */
  readonly stop: () => void
  /** Waits for the claim in flight, if any. */
  readonly claimed: Effect.Effect<void>
  /** Why a claim failed, if one did: the pass fails with it. */
  readonly failure: () => Cause.Cause<DatabaseUnavailable> | undefined
}

type Claim = (owner: string, now: Date, leaseUntil: Date) => Effect.Effect<ReadonlyArray<Claimed>, DatabaseUnavailable>

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
    const refresher = yield* Refresher
    const app = yield* AppConfig
    const settings = app.monitor
    const leaseMs = Duration.toMillis(app.tokens.leaseDuration)

    const makeFeed = (claim: Claim, owner: string, held: Set<string>, scope: Scope.Scope): Effect.Effect<Feed> =>
      Effect.sync(() => {
        let rows: Array<Claimed> = []
        let taken = 0
        let dry = false
        let stopped = false
        let failure: Cause.Cause<DatabaseUnavailable> | undefined
        // The claim in flight, if any: completes when its rows are in.
        let claiming: Deferred.Deferred<void> | undefined

        const claimNext = Effect.gen(function*() {
          const now = new Date(yield* Clock.currentTimeMillis)
          const exit = yield* Effect.exit(claim(owner, now, new Date(now.getTime() + leaseMs)))
          if (Exit.isFailure(exit)) {
            failure = exit.cause
            dry = true
            return
          }
          for (const r of exit.value) held.add(r.connection.id)
          rows = rows.slice(taken).concat(exit.value)
          taken = 0
          if (exit.value.length < settings.batch) dry = true
        })

        /** Starts a claim unless one is in flight or the feed is dry; gives the claim in flight, if any. */
        const claimMore = Effect.suspend((): Effect.Effect<Deferred.Deferred<void> | undefined> => {
          if (claiming !== undefined || dry) return Effect.succeed(claiming)
          return Effect.flatMap(Deferred.make<void>(), (done) => {
            claiming = done
            const end = Effect.suspend(() => {
              claiming = undefined
              return Deferred.succeed(done, undefined)
            })
            // In the pass's scope: the worker that asked for rows does not own the claim.
            return Effect.as(Effect.forkIn(Effect.ensuring(claimNext, end), scope), done)
          })
        })

        const next: Effect.Effect<Option.Option<Claimed>> = Effect.suspend(() => {
          if (stopped || failure !== undefined) return Effect.succeed(Option.none())
          const row = rows[taken]
          if (row !== undefined) {
            taken++
            // Fewer rows left than workers: the next batch is claimed now, not once they are gone.
            return rows.length - taken < settings.concurrency ? Effect.as(claimMore, Option.some(row)) : Effect.succeed(Option.some(row))
          }
          return Effect.flatMap(claimMore, (inFlight) => inFlight === undefined ? Effect.succeed(Option.none()) : Effect.zipRight(Deferred.await(inFlight), next))
        })

        return {
          next,
          stop: () => {
            stopped = true
            dry = true
          },
          claimed: Effect.suspend(() => claiming === undefined ? Effect.void : Deferred.await(claiming)),
          failure: () => failure
        }
      })

    /**
     * One kind of work over every row the claims give: MONITOR_CONCURRENCY workers, each
     * taking the next row once its last one's outcome is stored (in batches, with the other
     * workers' outcomes). The workers run in a scope of the pass's own, not as children
     * of the pass: when the pass is interrupted it stops handing out rows, and waits for each
     * worker to finish the row in hand and for every answer to be stored — a platform that
     * rotates refresh tokens has retired the old one once it answers.
     */
    const runPass = (claim: Claim, kind: "refresh" | "validate", owner: string, held: Set<string>, tally: Tally) =>
      Effect.acquireUseRelease(Scope.make(), (scope) => pass(claim, kind, owner, held, tally, scope), (scope, exit) => Scope.close(scope, exit))

    const pass = (claim: Claim, kind: "refresh" | "validate", owner: string, held: Set<string>, tally: Tally, scope: Scope.Scope) =>
      Effect.gen(function*() {
        const feed = yield* makeFeed(claim, owner, held, scope)
        const success = kind === "refresh" ? "refreshed" : "validated"
        const drained = yield* Deferred.make<void>()
        // Rows handed out whose outcome is not known yet; the pass ends when none is left.
        let unsettled = 0
        let working = true
        const oneLess = Effect.suspend(() => {
          unsettled--
          return !working && unsettled === 0 ? Deferred.succeed(drained, undefined) : Effect.void
        })
        const step = kind === "refresh" ? refresher.refreshHeld : refresher.validateHeld
        /**
         * One row, until its outcome is stored: the worker's next platform call waits for it, so
         * that the answers a process holds unstored (lost if it is killed: a platform that
         * rotates refresh tokens has retired the old ones) are at most MONITOR_CONCURRENCY.
         */
        const attempt = (claimed: Claimed) =>
          Effect.flatMap(Deferred.make<void>(), (stored) => {
            const row = claimed.connection
            let settled = false
            unsettled++
            return step(claimed, owner, (result) =>
              Effect.suspend(() => {
                settled = true
                const outcome = classify(result, success)
                // A row skipped (or failed without a write) keeps its lease until the pass ends, so
                // that no claim of this pass takes it again; the pass then releases them together.
                if (outcome._tag !== "skipped" && outcome._tag !== "failed") held.delete(row.id)
                tally.add(row.platform, outcome)
                return Effect.zipRight(oneLess, Deferred.succeed(stored, undefined))
              })).pipe(
                Effect.zipRight(Deferred.await(stored)),
                // A defect before the outcome was told: the row is not waited for (its lease is released with the others).
                Effect.catchAllCause((cause) => settled ? Effect.failCause(cause) : Effect.zipRight(oneLess, Effect.failCause(cause)))
              )
          })

        const worker = Effect.gen(function*() {
          while (true) {
            const next = yield* feed.next
            if (Option.isNone(next)) return
            yield* attempt(next.value)
          }
        })
        // A worker's defect must not interrupt the others mid-row: each ends on its own.
        const workers = yield* Effect.forkIn(
          Effect.all(Array.from({ length: settings.concurrency }, () => Effect.exit(worker)), { concurrency: "unbounded" }),
          scope
        )
        const finished = Effect.flatMap(Fiber.join(workers), (exits) =>
          Effect.suspend(() => {
            working = false
            return unsettled === 0 ? Deferred.succeed(drained, undefined) : Effect.void
          }).pipe(Effect.zipRight(Deferred.await(drained)), Effect.as(exits)))
        const exits = yield* finished.pipe(
          Effect.onInterrupt(() => Effect.suspend(() => {
            feed.stop()
            return Effect.zipRight(finished, feed.claimed)
          }))
        )
        for (const exit of exits) if (Exit.isFailure(exit)) return yield* Effect.failCause(exit.cause)
        const failure = feed.failure()
        if (failure !== undefined) return yield* Effect.failCause(failure)
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
      const tally = new Tally()

      const warned = yield* warn(now)
      yield* Effect.gen(function*() {
        yield* runPass(
          (o, t, lease) => connections.claimDueRefreshes(o, t, new Date(t.getTime() + Duration.toMillis(settings.refreshAhead)), lease, settings.batch),
          "refresh",
          owner,
          held,
          tally
        )
        yield* runPass(
          (o, t, lease) => connections.claimDueValidations(o, t, new Date(t.getTime() - Duration.toMillis(settings.validateInterval)), lease, settings.batch),
          "validate",
          owner,
          held,
          tally
        )
      }).pipe(
        // However the pass ends; rows in flight have finished by then (a refresh runs to its end).
        Effect.ensuring(Effect.suspend(() => Effect.ignore(connections.releaseLeases([...held], owner)))),
        Effect.ensuring(Effect.suspend(() => tally.record))
      )

      const report: TickReport = {
        due: tally.due,
        refreshed: tally.outcomes.refreshed,
        validated: tally.outcomes.validated,
        warned,
        skipped: tally.outcomes.skipped,
        needsReauth: tally.outcomes.needs_reauth,
        failed: tally.failed,
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
