import { randomUUID } from "node:crypto"
import { Clock, Data, Duration, Effect, Either, Exit, Fiber, FiberMap, FiberSet, Match, Metric, Option, type Redacted, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { type Claimed, ConnectionRepository, type Outcome, type RefreshToStore, type SealedTokens } from "../db/ConnectionRepository.js"
import type { OutcomeEvent } from "../db/EventRepository.js"
import type { Connection } from "../domain/Connection.js"
import {
  type ConnectionUnreadable,
  type DatabaseUnavailable,
  NotConnected,
  type PlatformNotConfigured,
  type ProviderError,
  ProviderUnavailable,
  RateLimited,
  RefreshInProgress,
  type UnknownPlatform
} from "../domain/errors.js"
import { taggedBy } from "../observability/labels.js"
import { refreshes } from "../observability/metrics.js"
import type { TokenGrant } from "../platforms/definition.js"
import type { IntegrationProvider } from "../registry/IntegrationProvider.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { makeBatcher } from "./batching.js"
import { StatusChanges } from "./StatusChanges.js"

/** After a transient failure the next attempt waits 1 min, doubling per failure, at most 1 h. */
export const nextAttemptDelay = (failures: number): Duration.Duration =>
  Duration.min(Duration.times(Duration.minutes(1), 2 ** Math.min(failures, 10)), Duration.hours(1))

/**
 * When the monitor tries a connection again after a transient failure: after the backoff,
 * or after the platform's Retry-After when it asked for longer, that capped at
 * RETRY_AFTER_MAX (a platform's 864000 s would park the connection for ten days).
 *
 * While the access token is still valid, never later than one MONITOR_INTERVAL before it
 * expires: a pass then still tries the connection before its token runs out, whatever the
 * platform asked. When that point has already passed (the token expires within one
 * interval, or has expired), the rule above applies unchanged rather than "at once": no
 * pass can be counted on to come before the expiry any more, the token endpoint refreshes
 * an expiring token on demand whatever next_attempt_at says, and trying at once would send
 * a platform that just refused, or asked us to slow down, a request at every pass.
 */
export const nextAttemptAt = (failure: {
  readonly now: Date
  /** Failures in a row before this one. */
  readonly failures: number
  readonly retryAfterMs: number | undefined
  readonly expiresAt: Date | null
  readonly retryAfterMax: Duration.Duration
  readonly monitorInterval: Duration.Duration
}): Date => {
  const asked = Math.min(failure.retryAfterMs ?? 0, Duration.toMillis(failure.retryAfterMax))
  const wanted = failure.now.getTime() + Math.max(Duration.toMillis(nextAttemptDelay(failure.failures)), asked)
  const lastUseful = failure.expiresAt === null ? null : failure.expiresAt.getTime() - Duration.toMillis(failure.monitorInterval)
  return new Date(lastUseful !== null && lastUseful > failure.now.getTime() ? Math.min(wanted, lastUseful) : wanted)
}

/**
 * A claimed row whose lease has less time left than the platform's longest operation: calling
 * the platform now could outlive the lease and race whoever takes the row next, so it is left
 * for a later claim.
 */
export class LeaseTooShort extends Data.TaggedError("LeaseTooShort")<{ readonly platform: string }> {}

const LEASE_POLL = Duration.millis(100)

/**
 * Every way a refresh (or a validation) can end without a stored new token: the platform's
 * answer, or why the platform was not called, or why the answer could not be stored.
 */
export type RefreshFailure =
  | ProviderError
  | NotConnected
  | RefreshInProgress
  | LeaseTooShort
  | ConnectionUnreadable
  | DatabaseUnavailable
  | PlatformNotConfigured
  | UnknownPlatform

/** A store that failed because the database blinked is tried again, briefly (about 1.5 s in all). */
const STORE_RETRY = Schedule.exponential(Duration.millis(100)).pipe(Schedule.intersect(Schedule.recurs(4)))

/** A write that failed because the database blinked, tried again on STORE_RETRY. */
export const retryingStore = <A>(write: Effect.Effect<A, DatabaseUnavailable>) =>
  Effect.retry(write, { schedule: STORE_RETRY, while: (e) => e._tag === "DatabaseUnavailable" })

/**
 * Refreshes one connection at a time across every process: a lease on the row is taken
 * before the platform is called (no transaction is held open across the call) and released
 * by the statement that stores the outcome. A caller that finds the lease taken waits for
 * it, then uses the holder's result instead of refreshing again — with rotating refresh
 * tokens a second refresh would present a used token. Within a process, the callers of one
 * connection share one refresh, which runs in this service's scope and may outlive them
 * (see `flights`). Every stored outcome is announced through StatusChanges, so cached
 * statuses follow at once, here and in other processes.
 */
export class Refresher extends Effect.Service<Refresher>()("Integrations/Refresher", {
  scoped: Effect.gen(function*() {
    const registry = yield* ProviderRegistry
    const connections = yield* ConnectionRepository
    const changes = yield* StatusChanges
    const app = yield* AppConfig
    const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

    /**
     * Refresh results that arrive together are stored together: under load (the monitor
     * refreshing many connections at once) one statement stores many, each with its events,
     * and the rows stored are announced.
     */
    const storeBatch = (batch: ReadonlyArray<RefreshToStore>) =>
      retryingStore(connections.storeRefreshes(batch)).pipe(
        Effect.tap((stored) => changes.publishMany(stored.values())),
        Effect.map((stored) => (item: RefreshToStore) => Option.fromNullable(stored.get(item.connection.id)))
      )
    /** For callers waiting for their refresh: a result alone is stored at once. */
    const storeBatched = yield* makeBatcher(storeBatch, { workers: 1, maxBatch: 100 })
    /**
     * Platform calls with the storing of their answers. Closing this service's scope waits
     * for them instead of interrupting them (the finalizer below runs before the set's own,
     * which interrupts): a platform that rotates refresh tokens has retired the old one once
     * it answers, so an answer cut off at shutdown would be a connection lost. The wait is
     * bounded by the platform's budget (RETRY_BUDGET plus its timeout).
     */
    const calls = yield* FiberSet.make<unknown, unknown>()
    yield* Effect.addFinalizer(() => FiberSet.awaitEmpty(calls))

    /**
     * Runs `effect` to its end even when the caller is interrupted meanwhile, while its own
     * timeouts still work: it runs in a fiber of `calls`, not a child of the caller (an
     * interrupted fiber interrupts its children at once), and the caller waits for it
     * uninterruptibly; the platform's budget bounds the wait.
     */
    const shielded = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.uninterruptible(Effect.flatMap(FiberSet.run(calls, Effect.interruptible(effect)), Fiber.join))

    const refreshesTagged = taggedBy(refreshes)
    const count = (platform: string, outcome: "success" | "failure" | "skipped", reason: string) =>
      Metric.increment(refreshesTagged({ platform, outcome, reason }))

    /** Waits until no live lease is held on the row, then gives the row as it is. */
    const awaitLease = (id: string, platform: string) =>
      Effect.gen(function*() {
        const row = yield* connections.findById(id)
        if (Option.isNone(row)) return yield* new NotConnected({ platform })
        const t = yield* now
        const held = row.value.leaseUntil !== null && row.value.leaseUntil.getTime() > t.getTime()
        return held ? yield* Effect.fail("held" as const) : row.value
      }).pipe(
        Effect.retry({
          while: (e) => e === "held",
          schedule: Schedule.spaced(LEASE_POLL).pipe(Schedule.upTo(app.tokens.leaseDuration))
        }),
        Effect.catchIf((e): e is "held" => e === "held", () => Effect.fail(new RefreshInProgress({ platform })))
      )

    /**
     * Holds the lease of `connection` while `work` runs with the row as it is under the
     * lease. When someone else holds it, waits, and returns their result if `done` says the
     * row no longer needs the work. A stored outcome releases the lease in its statement;
     * any other end (a failure, an interruption) releases it here.
     */
    const underLease = <A extends Connection, E, R>(
      connection: Connection,
      done: (row: Connection) => boolean,
      work: (row: Connection, owner: string) => Effect.Effect<A, E, R>
    ) =>
      Effect.gen(function*() {
        const owner = randomUUID()
        for (let attempt = 0; attempt < 3; attempt++) {
          const t = yield* now
          const leased = yield* connections.acquireLease(connection.id, owner, t, new Date(t.getTime() + Duration.toMillis(app.tokens.leaseDuration)))
          if (Option.isSome(leased)) {
            if (done(leased.value)) {
              yield* connections.releaseLease(connection.id, owner)
              return leased.value
            }
            return yield* work(leased.value, owner).pipe(
              Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Effect.ignore(connections.releaseLease(connection.id, owner)))
            )
          }
          const after = yield* awaitLease(connection.id, connection.platform)
          if (done(after)) return after
        }
        return yield* new RefreshInProgress({ platform: connection.platform })
      })

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

    const recovered = (row: Connection): ReadonlyArray<OutcomeEvent> =>
      row.refreshFailures > 0 ? [{ kind: "recovered", detail: { after_failures: row.refreshFailures } }] : []

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
        return yield* store(
          row,
          connections.recordRefreshFailure(row.id, { error: error._tag, invalidGrant, nextAttemptAt: nextAttempt }, outcome(owner, t, [{
            kind: "refresh_failed",
            detail: { reason: error._tag, failures: row.refreshFailures + 1, next_attempt_at: nextAttempt.toISOString() }
          }]))
        )
      })

    const markDead = (row: Connection, owner: string, status: "needs_reauth" | "revoked", reason: string) =>
      Effect.gen(function*() {
        const t = yield* now
        const updated = yield* store(row, connections.markDead(row.id, status, reason, outcome(owner, t, [{ kind: status, detail: { reason } }])))
        yield* Effect.logWarning(`connection ${status}`).pipe(Effect.annotateLogs({ platform: row.platform, reason }))
        return updated
      })

    /** A connection whose tokens cannot be read needs re-authorisation. */
    const unreadableIsDead = <A, E extends { readonly _tag: string }>(row: Connection, owner: string, read: Effect.Effect<A, E>) =>
      Effect.tapError(read, (e) => e._tag === "ConnectionUnreadable" ? Effect.ignore(markDead(row, owner, "needs_reauth", "unreadable")) : Effect.void)

    const tokensOf = (row: Connection, owner: string, sealed: SealedTokens | undefined) =>
      unreadableIsDead(row, owner, sealed === undefined ? connections.tokens(row) : connections.openTokens(row, sealed))

    /** The refresh token alone: from the claim's ciphertexts when given, else read. */
    const refreshTokenOf = (row: Connection, owner: string, sealed: SealedTokens | undefined) =>
      unreadableIsDead(
        row,
        owner,
        sealed === undefined ? Effect.map(connections.tokens(row), (t) => t.refreshToken) : Effect.suspend(() => connections.openRefreshToken(row, sealed))
      )

    /** Whether a claimed row's lease, at `t`, still outlasts the platform's longest operation. */
    const leaseOutlasts = (row: Connection, provider: IntegrationProvider, t: number) =>
      row.leaseUntil !== null && row.leaseUntil.getTime() - t >= Duration.toMillis(provider.budget)

    /** The platform is called for a claimed row only when its lease outlasts the platform's longest operation. */
    const ensureLeaseOutlasts = (row: Connection, provider: IntegrationProvider) =>
      Effect.flatMap(Clock.currentTimeMillis, (t) => leaseOutlasts(row, provider, t) ? Effect.void : Effect.fail(new LeaseTooShort({ platform: row.platform })))

    /** A refresh the platform granted, as the batched store takes it. */
    const refreshed = (row: Connection, owner: string, refreshToken: Redacted.Redacted<string>, grant: TokenGrant, t: Date): RefreshToStore => ({
      connection: row,
      tokens: {
        accessToken: grant.accessToken,
        refreshToken: grant.refreshToken,
        previousRefreshToken: Option.some(refreshToken),
        tokenType: Option.getOrNull(grant.tokenType),
        scope: Option.getOrNull(grant.scope),
        expiresAt: Option.match(grant.expiresIn, { onNone: () => null, onSome: (s) => new Date(t.getTime() + s * 1000) })
      },
      outcome: outcome(owner, t, [{ kind: "refreshed", detail: { rotated: Option.isSome(grant.refreshToken) } }, ...recovered(row)])
    })

    /** What a stored refresh gives its caller: the row, counted as a success. */
    const afterStore = (row: Connection, stored: Exit.Exit<Option.Option<Connection>, DatabaseUnavailable>) =>
      Effect.flatMap(stored, (option) => written(row, option)).pipe(Effect.tap(() => count(row.platform, "success", "ok")))

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

    /**
     * The platform's answer and its storage, run to the end even when the caller is
     * interrupted: a platform that rotates refresh tokens has retired the old one once it
     * answers, so an answer not stored would be a connection lost.
     */
    const refreshAndStore = (row: Connection, owner: string, provider: IntegrationProvider, refreshToken: Redacted.Redacted<string>) =>
      shielded(Effect.gen(function*() {
        const result = yield* Effect.either(provider.refresh(refreshToken))
        if (Either.isLeft(result)) return yield* refreshFailed(row, owner, provider, result.left)
        const item = refreshed(row, owner, refreshToken, result.right, yield* now)
        return yield* afterStore(row, yield* Effect.exit(storeBatched.lookup(item)))
      }))

    /** What a refresh under the lease `owner` holds needs: the platform and the refresh token. */
    const prepareRefresh = (row: Connection, owner: string, sealed?: SealedTokens) =>
      row.status !== "active"
        ? Effect.fail(new NotConnected({ platform: row.platform, status: row.status }))
        : Effect.flatMap(registry.get(row.platform), (provider) =>
          Effect.flatMap(refreshTokenOf(row, owner, sealed), (refreshToken) =>
            Option.isNone(refreshToken)
              ? Effect.fail(new NotConnected({ platform: row.platform, status: "expired" }))
              : Effect.succeed({ provider, refreshToken: refreshToken.value })))

    const prepareValidation = (row: Connection, owner: string, sealed?: SealedTokens) =>
      Effect.gen(function*() {
        if (row.status !== "active") return yield* new NotConnected({ platform: row.platform, status: row.status })
        const provider = yield* registry.get(row.platform)
        const tokens = yield* tokensOf(row, owner, sealed)
        return { provider, accessToken: tokens.accessToken }
      })

    /** Checks a token that does not expire against the platform (WordPress.com's /me); run to the end like a refresh. */
    const validateAndStore = (row: Connection, owner: string, provider: IntegrationProvider, accessToken: Redacted.Redacted<string>) =>
      shielded(Effect.gen(function*() {
        const result = yield* Effect.either(provider.validate(accessToken))
        if (result._tag === "Right") {
          const t = yield* now
          return yield* store(row, connections.markValidated(row.id, outcome(owner, t, recovered(row))))
        }
        const error = result.left
        if (error._tag === "InvalidGrant") yield* markDead(row, owner, "revoked", "token_rejected")
        else if (error._tag !== "CircuitOpen") yield* recordFailure(row, owner, error, false)
        return yield* error
      }))

    const refreshNow = (connection: Connection, options: { readonly force: boolean }) =>
      Effect.gen(function*() {
        const asked = yield* now
        const refreshedSince = (row: Connection) =>
          row.status !== "active" ||
          (row.lastRefreshedAt !== null && (connection.lastRefreshedAt === null || row.lastRefreshedAt > connection.lastRefreshedAt)) ||
          (!options.force && row.expiresAt !== null && row.expiresAt.getTime() - asked.getTime() > Duration.toMillis(app.tokens.minTtl))
        return yield* underLease(connection, refreshedSince, (row, owner) =>
          Effect.flatMap(prepareRefresh(row, owner), ({ provider, refreshToken }) => refreshAndStore(row, owner, provider, refreshToken)))
      })

    /**
     * The refreshes under way in this process, one per connection, run in this service's
     * scope rather than in a caller's fiber: a caller that stops waiting (the token endpoint
     * after TOKEN_REFRESH_WAIT) or is interrupted leaves it going, and every caller meanwhile
     * shares it — its options are those of the caller that started it (a forced refresh
     * that joins one under way takes its result, as it takes another process's). At shutdown
     * one waiting for a lease is interrupted; one whose platform call is in flight is not
     * (see `calls`), and its answer is stored.
     */
    const flights = yield* FiberMap.make<string, Connection, Effect.Effect.Error<ReturnType<typeof refreshNow>>>()
    // Looking the flight up and starting one is one step, or two callers could start two.
    const starting = yield* Effect.makeSemaphore(1)
    const flight = (connection: Connection, options: { readonly force: boolean }) =>
      starting.withPermits(1)(Effect.suspend(() =>
        Option.match(FiberMap.unsafeGet(flights, connection.id), {
          onSome: Effect.succeed,
          onNone: () => FiberMap.run(flights, connection.id, refreshNow(connection, options))
        })
      ))

    return {
      /**
       * A row the monitor claimed, sent to its platform with the refresh token the claim
       * returned: the new tokens to store (the monitor stores them in batches, with
       * `storeClaimed`), or why not — recorded already when it was the platform's answer (a
       * failure counted, or the connection marked needs_reauth). A failure that stored nothing
       * (a skip) leaves the lease held: the monitor releases its leases when its pass ends, so
       * the row is not attempted twice in one pass. Once the platform is called the caller
       * must not be interrupted (the monitor's workers are not: a stopped pass lets them
       * finish their row).
       */
      // Written as a chain rather than a generator: this runs once per row of every pass.
      refreshClaimed: (claimed: Claimed, owner: string): Effect.Effect<RefreshToStore, RefreshFailure> => {
        const row = claimed.connection
        return Effect.flatMap(prepareRefresh(row, owner, claimed.sealed), ({ provider, refreshToken }) =>
          Effect.flatMap(Clock.currentTimeMillis, (t): Effect.Effect<RefreshToStore, RefreshFailure> =>
            leaseOutlasts(row, provider, t)
              ? provider.refresh(refreshToken).pipe(
                Effect.catchAll((error) => refreshFailed(row, owner, provider, error)),
                Effect.flatMap((grant) => Effect.map(now, (answeredAt) => refreshed(row, owner, refreshToken, grant, answeredAt)))
              )
              : Effect.fail(new LeaseTooShort({ platform: row.platform }))))
      },

      /**
       * Stores the monitor's refreshes in one statement (retried briefly if the database
       * blinked) and announces them; gives each row's outcome, in the batch's order.
       */
      storeClaimed: (batch: ReadonlyArray<RefreshToStore>): Effect.Effect<ReadonlyArray<Either.Either<Connection, RefreshFailure>>> =>
        Effect.flatMap(Effect.exit(storeBatch(batch)), (stored) =>
          Effect.forEach(batch, (item) => Effect.either(afterStore(item.connection, Exit.map(stored, (outcomeOf) => outcomeOf(item)))))),

      /** Validates a row the monitor claimed (a token that does not expire), and stores the outcome. */
      validateClaimed: (claimed: Claimed, owner: string): Effect.Effect<Connection, RefreshFailure> =>
        Effect.gen(function*() {
          const row = claimed.connection
          const { provider, accessToken } = yield* prepareValidation(row, owner, claimed.sealed)
          yield* ensureLeaseOutlasts(row, provider)
          return yield* validateAndStore(row, owner, provider, accessToken)
        }),

      /**
       * Refreshes the connection unless another process did so while we waited; with
       * `force` a fresh token is requested even when the stored one is still valid. Joins
       * the refresh of the connection already under way in this process, if any.
       */
      refresh: (connection: Connection, options: { readonly force: boolean }) => Effect.flatMap(flight(connection, options), Fiber.join),

      /**
       * Like `refresh` without force, waiting for it at most `wait`: none when it is still
       * under way (here, or in another process that holds the lease). It then goes on in
       * the background, its result stored, and later callers join it.
       */
      refreshWithin: (connection: Connection, wait: Duration.DurationInput) =>
        Effect.flatMap(flight(connection, { force: false }), (fiber) => Effect.timeoutOption(Fiber.join(fiber), wait)),

      validate: (connection: Connection) =>
        Effect.gen(function*() {
          const asked = yield* now
          const validatedSince = (row: Connection) =>
            row.status !== "active" || (row.lastValidatedAt !== null && row.lastValidatedAt.getTime() >= asked.getTime())
          return yield* underLease(connection, validatedSince, (row, owner) =>
            Effect.flatMap(prepareValidation(row, owner), ({ provider, accessToken }) => validateAndStore(row, owner, provider, accessToken)))
        })
    } as const
  })
}) {}
