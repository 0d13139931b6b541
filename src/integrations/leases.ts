import { randomUUID } from "node:crypto"
import { Clock, Duration, Effect, Exit, Option, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { ConnectionRepository } from "../db/ConnectionRepository.js"
import type { Connection } from "../domain/Connection.js"
import { NotConnected, RefreshInProgress } from "../domain/errors.js"

const LEASE_POLL = Duration.millis(100)

/**
 * The lease that makes one refresh of a connection at a time across every process: taken on
 * the row before the platform is called (no transaction is held open across the call), and
 * released by the statement that stores the outcome.
 */
export const makeLeases = Effect.gen(function*() {
  const connections = yield* ConnectionRepository
  const app = yield* AppConfig
  const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

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

  return { underLease } as const
})
