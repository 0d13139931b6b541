import { randomUUID } from "node:crypto"
import { Clock, Duration, Effect, Exit, Metric, Option, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { type Claimed, ConnectionRepository, type SealedTokens } from "../db/ConnectionRepository.js"
import { EventRepository } from "../db/EventRepository.js"
import type { Connection } from "../domain/Connection.js"
import { NotConnected, RefreshInProgress } from "../domain/errors.js"
import { withTags } from "../observability/labels.js"
import { refreshes } from "../observability/metrics.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"

/** After a transient failure the next attempt waits 1 min, doubling per failure, at most 1 h. */
export const nextAttemptDelay = (failures: number): Duration.Duration =>
  Duration.min(Duration.times(Duration.minutes(1), 2 ** Math.min(failures, 10)), Duration.hours(1))

const LEASE_POLL = Duration.millis(100)

/**
 * Refreshes one connection at a time across every process: a lease on the row is taken
 * before the platform is called (no transaction is held open across the call) and released
 * when the outcome is stored. A caller that finds the lease taken waits for it, then uses
 * the holder's result instead of refreshing again — with rotating refresh tokens a second
 * refresh would present a used token.
 */
export class Refresher extends Effect.Service<Refresher>()("Integrations/Refresher", {
  effect: Effect.gen(function*() {
    const registry = yield* ProviderRegistry
    const connections = yield* ConnectionRepository
    const events = yield* EventRepository
    const app = yield* AppConfig
    const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

    const count = (platform: string, outcome: "success" | "failure", reason: string) =>
      Metric.increment(withTags(refreshes, { platform, outcome, reason }))

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
     * Work on a row whose lease `owner` holds. A stored outcome releases the lease in the
     * same statement; any other end (a failure, an interruption) releases it here.
     */
    const held = <A, E, R>(row: Connection, owner: string, work: (row: Connection) => Effect.Effect<A, E, R>) =>
      work(row).pipe(Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Effect.ignore(connections.releaseLease(row.id, owner))))

    /**
     * Holds the lease of `connection` while `work` runs with the row as it is under the
     * lease. When someone else holds it, waits, and returns their result if `done` says the
     * row no longer needs the work.
     */
    const underLease = <A extends Connection, E, R>(
      connection: Connection,
      done: (row: Connection) => boolean,
      work: (row: Connection) => Effect.Effect<A, E, R>
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
            return yield* held(leased.value, owner, work)
          }
          const after = yield* awaitLease(connection.id, connection.platform)
          if (done(after)) return after
        }
        return yield* new RefreshInProgress({ platform: connection.platform })
      })

    const recordFailure = (row: Connection, error: { readonly _tag: string }, invalidGrant: boolean) =>
      Effect.gen(function*() {
        const t = yield* now
        const nextAttemptAt = new Date(t.getTime() + Duration.toMillis(nextAttemptDelay(row.refreshFailures)))
        yield* connections.recordRefreshFailure(row.id, { error: error._tag, invalidGrant, nextAttemptAt }, t)
        yield* events.append({
          connectionId: row.id,
          userId: row.userId,
          platform: row.platform,
          kind: "refresh_failed",
          detail: { reason: error._tag, failures: row.refreshFailures + 1, next_attempt_at: nextAttemptAt.toISOString() }
        }, t)
      })

    const markDead = (row: Connection, status: "needs_reauth" | "revoked", reason: string) =>
      Effect.gen(function*() {
        const t = yield* now
        const updated = yield* connections.setStatus(row.id, status, t, reason)
        yield* events.append({ connectionId: row.id, userId: row.userId, platform: row.platform, kind: status, detail: { reason } }, t)
        yield* Effect.logWarning(`connection ${status}`).pipe(Effect.annotateLogs({ platform: row.platform, reason }))
        return Option.getOrElse(updated, () => row)
      })

    const tokensOf = (row: Connection, sealed: SealedTokens | undefined) =>
      sealed === undefined ? connections.tokens(row) : connections.openTokens(row, sealed)

    /** One refresh under the lease; every outcome is stored before it is returned. */
    const refreshLeased = (row: Connection, sealed?: SealedTokens) =>
      Effect.gen(function*() {
        if (row.status !== "active") return yield* new NotConnected({ platform: row.platform, status: row.status })
        const provider = yield* registry.get(row.platform)
        const tokens = yield* tokensOf(row, sealed).pipe(
          Effect.tapError((e) => e._tag === "ConnectionUnreadable" ? markDead(row, "needs_reauth", "unreadable") : Effect.void)
        )
        if (Option.isNone(tokens.refreshToken)) return yield* new NotConnected({ platform: row.platform, status: "expired" })

        const result = yield* Effect.either(provider.refresh(tokens.refreshToken.value))
        const t = yield* now
        if (result._tag === "Right") {
          const grant = result.right
          const stored = yield* connections.storeRefresh(row, {
            accessToken: grant.accessToken,
            refreshToken: grant.refreshToken,
            tokenType: Option.getOrNull(grant.tokenType),
            scope: Option.getOrNull(grant.scope),
            expiresAt: Option.match(grant.expiresIn, { onNone: () => null, onSome: (s) => new Date(t.getTime() + s * 1000) })
          }, t)
          yield* events.append({ connectionId: row.id, userId: row.userId, platform: row.platform, kind: "refreshed", detail: { rotated: Option.isSome(grant.refreshToken) } }, t)
          if (row.refreshFailures > 0) {
            yield* events.append({ connectionId: row.id, userId: row.userId, platform: row.platform, kind: "recovered", detail: { after_failures: row.refreshFailures } }, t)
          }
          yield* count(row.platform, "success", "ok")
          return stored
        }

        const error = result.left
        yield* count(row.platform, "failure", error._tag)
        switch (error._tag) {
          case "CircuitOpen":
            // The platform is known to be down: not this connection's failure.
            return yield* error
          case "InvalidGrant": {
            if (row.invalidGrantStreak + 1 >= provider.definition.invalidGrantTolerance) {
              yield* markDead(row, "needs_reauth", "invalid_grant")
            } else {
              yield* recordFailure(row, error, true)
            }
            return yield* error
          }
          default:
            yield* recordFailure(row, error, false)
            return yield* error
        }
      })

    /** Checks a token that does not expire against the platform (WordPress.com's /me). */
    const validateLeased = (row: Connection, sealed?: SealedTokens) =>
      Effect.gen(function*() {
        if (row.status !== "active") return yield* new NotConnected({ platform: row.platform, status: row.status })
        const provider = yield* registry.get(row.platform)
        const tokens = yield* tokensOf(row, sealed).pipe(
          Effect.tapError((e) => e._tag === "ConnectionUnreadable" ? markDead(row, "needs_reauth", "unreadable") : Effect.void)
        )
        const result = yield* Effect.either(provider.validate(tokens.accessToken))
        const t = yield* now
        if (result._tag === "Right") {
          yield* connections.markValidated(row.id, t)
          if (row.refreshFailures > 0) {
            yield* events.append({ connectionId: row.id, userId: row.userId, platform: row.platform, kind: "recovered", detail: { after_failures: row.refreshFailures } }, t)
          }
          return Option.getOrElse(yield* connections.findById(row.id), () => row)
        }
        const error = result.left
        if (error._tag === "InvalidGrant") {
          yield* markDead(row, "revoked", "token_rejected")
        } else if (error._tag !== "CircuitOpen") {
          yield* recordFailure(row, error, false)
        }
        return yield* error
      })

    return {
      /** Refreshes a row the monitor claimed (and holds the lease of), with its ciphertexts. */
      refreshHeld: (claimed: Claimed, owner: string) => held(claimed.connection, owner, (row) => refreshLeased(row, claimed.sealed)),
      validateHeld: (claimed: Claimed, owner: string) => held(claimed.connection, owner, (row) => validateLeased(row, claimed.sealed)),

      /**
       * Refreshes the connection unless another process did so while we waited; with
       * `force` a fresh token is requested even when the stored one is still valid.
       */
      refresh: (connection: Connection, options: { readonly force: boolean }) =>
        Effect.gen(function*() {
          const asked = yield* now
          const refreshedSince = (row: Connection) =>
            row.status !== "active" ||
            (row.lastRefreshedAt !== null && (connection.lastRefreshedAt === null || row.lastRefreshedAt > connection.lastRefreshedAt)) ||
            (!options.force && row.expiresAt !== null && row.expiresAt.getTime() - asked.getTime() > Duration.toMillis(app.tokens.minTtl))
          return yield* underLease(connection, refreshedSince, (row) => refreshLeased(row))
        }),

      validate: (connection: Connection) =>
        Effect.gen(function*() {
          const asked = yield* now
          const validatedSince = (row: Connection) =>
            row.status !== "active" || (row.lastValidatedAt !== null && row.lastValidatedAt.getTime() >= asked.getTime())
          return yield* underLease(connection, validatedSince, (row) => validateLeased(row))
        })
    } as const
  })
}) {}
