import { type Cause, Chunk, Clock, Deferred, Duration, Effect, Either, Exit, Fiber, Mailbox, Option, Queue, Ref, Scope, Stream } from "effect"
import type { Claimed } from "../db/connectionRows.js"
import type { RefreshToStore } from "../db/connectionWrites.js"
import type { Connection } from "../domain/Connection.js"
import type { DatabaseUnavailable } from "../domain/errors.js"
import type { RefreshFailure } from "../integrations/refreshPolicy.js"
import { outcomeOf, releasedByOutcome, type RowOutcome } from "./outcomes.js"

/** One statement claiming due rows for `owner`, leased until `leaseUntil`. */
export type Claim = (owner: string, now: Date, leaseUntil: Date) => Effect.Effect<ReadonlyArray<Claimed>, DatabaseUnavailable>

/** What one row of a pass does, to its stored outcome. */
export type Attempt = (row: Claimed) => Effect.Effect<Either.Either<Connection, RefreshFailure>>

export interface PassSettings {
  /** Rows per claim; a claim that comes back shorter is the last. */
  readonly batch: number
  /** Workers, each with one row in hand. */
  readonly concurrency: number
  readonly leaseDuration: Duration.Duration
}

/** What a pass did: each row's outcome, and the rows whose leases it still held at its end. */
export interface PassResult {
  readonly rows: ReadonlyArray<RowOutcome>
  readonly unreleased: ReadonlyArray<string>
}

/**
 * The claims of a pass as a stream of rows: one statement per batch, the next one made only
 * once the rows before it are all handed out (the stream's consumer pulls it), so that the
 * next batch is claimed while the last rows of the one before are in hand. A claim runs to
 * its end once made, and its rows are recorded in `claimed` at once: a pass stopped
 * meanwhile releases their leases.
 */
const claimsOf = (claim: Claim, owner: string, settings: PassSettings, claimed: Ref.Ref<Chunk.Chunk<string>>) => {
  const once = Effect.flatMap(Clock.currentTimeMillis, (ms) => claim(owner, new Date(ms), new Date(ms + Duration.toMillis(settings.leaseDuration)))).pipe(
    Effect.tap((rows) => Ref.update(claimed, Chunk.appendAll(Chunk.fromIterable(rows.map((r) => r.connection.id))))),
    Effect.uninterruptible
  )
  return Stream.paginateChunkEffect(undefined, () =>
    Effect.map(once, (rows) => [Chunk.fromIterable(rows), rows.length < settings.batch ? Option.none() : Option.some(undefined)] as const))
}

/** A worker: takes the next row once its last one's outcome is known, until the feed ends. */
const worker = (feed: Mailbox.ReadonlyMailbox<Claimed>, attempt: Attempt, success: "refreshed" | "validated") =>
  Effect.gen(function*() {
    // This worker's own record: nothing here is shared with the others.
    const rows: Array<RowOutcome> = []
    for (;;) {
      // The feed ends when the claims are done, failed (the pass then fails with the claim's error), or the pass is stopped.
      const next = yield* Effect.either(feed.take)
      if (Either.isLeft(next)) return rows
      const { connection } = next.right
      rows.push({ id: connection.id, platform: connection.platform, outcome: outcomeOf(yield* attempt(next.right), success) })
    }
  })

/**
 * One kind of work over every row the claims give. The claims feed a mailbox holding at most
 * one row per worker; MONITOR_CONCURRENCY long-lived workers take rows from it (a fiber per
 * row would cost more: measured by bench:monitor); each row's attempt (made by `makeAttempt`
 * in the pass's scope) gives its stored outcome as a value. The workers run in that scope,
 * not as children of the pass: a pass that is stopped claims and hands out no more rows, and
 * waits for each worker to finish the row in hand — a platform that rotates refresh tokens
 * has retired the old one once it answers. Each row is attempted at most once (a claim never
 * takes a row its owner held); the rows whose leases are still held at the end (skipped, or
 * never handed out) are named in the result. `finish` is given the result however the pass
 * ends, and the pass then ends the way it did: with its value, stopped, or with the claim's
 * failure (or a worker's defect) once the rows in hand are done.
 */
export const runPass = <T>(
  claim: Claim,
  owner: string,
  settings: PassSettings,
  makeAttempt: (scope: Scope.Scope) => Effect.Effect<Attempt>,
  success: "refreshed" | "validated",
  finish: (result: PassResult) => Effect.Effect<T>
): Effect.Effect<T, DatabaseUnavailable> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const attempt = yield* makeAttempt(scope)
      const claimed = yield* Ref.make(Chunk.empty<string>())
      const feed = yield* Mailbox.make<Claimed>(settings.concurrency)
      const producer = yield* Effect.forkIn(
        restore(Stream.runForEachChunk(claimsOf(claim, owner, settings, claimed), (rows) => feed.offerAll(rows))).pipe(
          // However the claims end (done, failed, stopped), the workers finish the rows they have.
          Effect.ensuring(feed.end)
        ),
        scope
      )
      // A worker's defect must not interrupt the others mid-row: each ends on its own.
      const workers = yield* Effect.forkIn(
        Effect.all(Array.from({ length: settings.concurrency }, () => Effect.exit(restore(worker(feed, attempt, success)))), { concurrency: "unbounded" }),
        scope
      )
      const waited = yield* Effect.exit(restore(Fiber.await(workers)))
      const stopped = Exit.isFailure(waited)
      if (stopped) {
        // No more claims (one in flight ends first: claims are not interrupted), and no more rows handed out.
        yield* Fiber.interrupt(producer)
        yield* feed.clear
      }
      const exits = yield* Fiber.join(workers)
      const produced = yield* Fiber.await(producer)
      yield* Scope.close(scope, Exit.void)
      const rows = exits.flatMap((exit) => (Exit.isSuccess(exit) ? exit.value : []))
      const released = new Set(rows.filter((r) => releasedByOutcome(r.outcome)).map((r) => r.id))
      const result: PassResult = { rows, unreleased: Chunk.toReadonlyArray(yield* Ref.get(claimed)).filter((id) => !released.has(id)) }
      // A worker's defect, or the claim's failure (the pass then ends with it, once the rows in hand are done).
      const finished = yield* finish(result)
      const causeOf = <A, E>(exit: Exit.Exit<A, E>): ReadonlyArray<Cause.Cause<E>> => (Exit.isFailure(exit) ? [exit.cause] : [])
      const causes: ReadonlyArray<Cause.Cause<DatabaseUnavailable>> = [...exits.flatMap(causeOf), ...(stopped ? [] : causeOf(produced))]
      const failure = causes[0]
      if (failure !== undefined) return yield* Effect.failCause(failure)
      return stopped ? yield* Effect.interrupt : finished
    })
  )

/**
 * The store of a refresh pass: results are stored in batches, each statement storing what
 * arrived while the one before ran (up to `max`), or, with a `linger`, what arrives within it
 * (on the Clock). Gives each caller its row's stored outcome; `stop` ends it once every
 * caller has had its answer.
 */
export const makeBatchedStore = (
  storeBatch: (batch: ReadonlyArray<RefreshToStore>) => Effect.Effect<ReadonlyArray<Either.Either<Connection, RefreshFailure>>>,
  options: { readonly max: number; readonly linger: Duration.Duration },
  scope: Scope.Scope
) =>
  Effect.gen(function*() {
    type Pending = readonly [RefreshToStore, Deferred.Deferred<Either.Either<Connection, RefreshFailure>>]
    const pending = yield* Queue.unbounded<Pending>()
    const arrivals = Stream.fromQueue(pending, { maxChunkSize: options.max })
    const batches = Duration.toMillis(options.linger) > 0 ? Stream.groupedWithin(arrivals, options.max, options.linger) : Stream.chunks(arrivals)
    // Interruptible, wherever it is forked from: closing the scope ends it.
    yield* Effect.forkIn(
      Effect.interruptible(Stream.runForEach(batches, (batch) =>
        Effect.flatMap(storeBatch(Chunk.toReadonlyArray(Chunk.map(batch, ([item]) => item))), (outcomes) =>
          Effect.forEach(Chunk.zip(batch, Chunk.fromIterable(outcomes)), ([[, done], outcome]) => Deferred.succeed(done, outcome), { discard: true })))),
      scope
    )
    return (item: RefreshToStore) =>
      Effect.flatMap(Deferred.make<Either.Either<Connection, RefreshFailure>>(), (done) => Effect.zipRight(Queue.offer(pending, [item, done]), Deferred.await(done)))
  })
