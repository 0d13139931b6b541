import { Cause, Chunk, Deferred, Duration, Effect, Exit, Option, Queue } from "effect"

/**
 * Takes one item, waiting for it, then every item waiting behind it (up to `max`); with a
 * `linger`, the batch is closed that long after its first item (on the Clock), and gathers
 * what arrives meanwhile.
 */
export const gather = <A>(queue: Queue.Dequeue<A>, max: number, linger: Duration.Duration = Duration.zero): Effect.Effect<Array<A>> =>
  Effect.gen(function*() {
    const first = yield* Queue.take(queue)
    if (Duration.toMillis(linger) > 0) yield* Effect.sleep(linger)
    return [first, ...Chunk.toReadonlyArray(yield* Queue.takeUpTo(queue, max - 1))]
  })

export interface Batcher<K, A, E> {
  /** Puts `key` in the next batch and waits for its answer. */
  readonly lookup: (key: K) => Effect.Effect<A, E>
}

/**
 * Coalesces lookups made at the same time into one batched lookup. `workers` batches run at
 * once; a free worker takes every lookup waiting (up to `maxBatch`). At low load each lookup
 * is a batch of its own and waits for nothing; under load, one statement answers many
 * requests. The workers run in the caller's scope.
 *
 * Not a RequestResolver: Effect batches requests only when one fiber makes them together
 * (`Effect.all` with batching); the lookups here come from independent fibers (one per HTTP
 * request, one per caller of a refresh), which a resolver would run one at a time.
 */
export const makeBatcher = <K, A, E>(
  lookupMany: (keys: ReadonlyArray<K>) => Effect.Effect<(key: K) => A, E>,
  options: {
    readonly workers: number
    readonly maxBatch: number
    /**
     * A batch that fails with such an error fails every lookup waiting behind it too, at once:
     * they would meet the same (a database that stopped answering), after waiting for a worker.
     */
    readonly failsWaiting?: (error: E) => boolean
  }
) =>
  Effect.gen(function*() {
    const waiting = yield* Queue.unbounded<readonly [K, Deferred.Deferred<A, E>]>()
    const worker = Effect.forever(
      Effect.gen(function*() {
        const batch = yield* gather(waiting, options.maxBatch)
        const exit = yield* Effect.exit(lookupMany(batch.map(([key]) => key)))
        const failed = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
        if (failed !== undefined && options.failsWaiting?.(failed) === true) batch.push(...(yield* Queue.takeAll(waiting)))
        yield* Effect.forEach(batch, ([key, answer]) => Deferred.done(answer, Exit.map(exit, (answerOf) => answerOf(key))), { discard: true })
      })
    )
    yield* Effect.forkScoped(Effect.all(Array.from({ length: options.workers }, () => worker), { concurrency: "unbounded" }))
    yield* Effect.addFinalizer(() => Queue.shutdown(waiting))

    const lookup = (key: K): Effect.Effect<A, E> =>
      Effect.flatMap(Deferred.make<A, E>(), (answer) => Effect.zipRight(Queue.offer(waiting, [key, answer] as const), Deferred.await(answer)))
    return { lookup } satisfies Batcher<K, A, E>
  })
