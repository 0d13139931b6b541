import { Clock, Duration, Effect, Either, Exit, Fiber, FiberMap, FiberSet, Option, type Redacted } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { makeBatcher } from "../db/batching.js"
import { ConnectionRepository } from "../db/ConnectionRepository.js"
import type { Claimed, SealedTokens } from "../db/connectionRows.js"
import type { RefreshToStore } from "../db/connectionWrites.js"
import type { Connection } from "../domain/Connection.js"
import { type DatabaseUnavailable, NotConnected } from "../domain/errors.js"
import type { TokenGrant } from "../platforms/definition.js"
import type { IntegrationProvider } from "../registry/IntegrationProvider.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { StatusChanges, StatusChangesLive } from "../status/StatusChanges.js"
import { makeLeases } from "./leases.js"
import { makeOutcomeWriter } from "./outcomeWriter.js"
import { LeaseTooShort, type RefreshFailure, retryingStore } from "./refreshPolicy.js"

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
  dependencies: [ProviderRegistry.Default, ConnectionRepository.Default, StatusChangesLive],
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

    const { underLease } = yield* makeLeases
    const { count, written, store, outcome, recovered, recordFailure, markDead, refreshFailed } = yield* makeOutcomeWriter

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
