import { Cause, Chunk, Deferred, Effect, Exit, Option, Queue } from "effect"

/**
 * A real timer, not the Clock: how long items wait to be sent together is the event loop's
 * business, and a TestClock must not hold them back.
 */
const lingering = (ms: number) =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), ms)
    return Effect.sync(() => clearTimeout(timer))
  })

/**
 * Takes one item, waiting for it, then every item waiting behind it (up to `max`); with
 * `lingerMs`, the batch is closed that long after its first item, and gathers what arrives
 * meanwhile.
 */
export const gather = <A>(queue: Queue.Dequeue<A>, max: number, lingerMs = 0): Effect.Effect<Array<A>> =>
  Effect.gen(function*() {
    const first = yield* Queue.take(queue)
    if (lingerMs > 0) yield* lingering(lingerMs)
    return [first, ...Chunk.toReadonlyArray(yield* Queue.takeUpTo(queue, max - 1))]
  })

export interface Batcher<K, A, E> {
  /** Puts `key` in the next batch and waits for its answer. */
  readonly lookup: (key: K) => Effect.Effect<A, E>
  /**
   * Puts `key` in the next batch and returns at once: the worker that runs the batch then
   * runs `then` with the answer. For callers with work to go on with meanwhile.
   */
  readonly submit: (key: K, then: (answer: Exit.Exit<A, E>) => Effect.Effect<void>) => Effect.Effect<void>
}

/**
 * Coalesces lookups made at the same time into one batched lookup. `workers` batches run at
 * once; a free worker takes every lookup waiting (up to `maxBatch`). At low load each lookup
 * is a batch of its own and waits for nothing; under load, one statement answers many
 * requests. The workers run in the caller's scope.
 */
export const makeBatcher = <K, A, E>(
  lookupMany: (keys: ReadonlyArray<K>) => Effect.Effect<(key: K) => A, E>,
  options: {
    readonly workers: number
    readonly maxBatch: number
    readonly lingerMs?: number
    /**
     * A batch that fails with such an error fails every lookup waiting behind it too, at once:
     * they would meet the same (a database that stopped answering), after waiting for a worker.
     */
    readonly failsWaiting?: (error: E) => boolean
  }
) =>
  Effect.gen(function*() {
    type Then = (answer: Exit.Exit<A, E>) => Effect.Effect<void>
    const waiting = yield* Queue.unbounded<readonly [K, Then]>()
    const worker = Effect.forever(
      Effect.gen(function*() {
        const batch = yield* gather(waiting, options.maxBatch, options.lingerMs)
        const exit = yield* Effect.exit(lookupMany(batch.map(([key]) => key)))
        const failed = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
        if (failed !== undefined && options.failsWaiting?.(failed) === true) batch.push(...(yield* Queue.takeAll(waiting)))
        for (const [key, then] of batch) {
          // A caller's continuation that dies is a bug of that caller: it must not stop the batches of others.
          yield* then(Exit.map(exit, (answer) => answer(key))).pipe(
            Effect.catchAllCause((cause) => Effect.logError("a batched lookup's continuation failed", cause))
          )
        }
      })
    )
    yield* Effect.forkScoped(Effect.all(Array.from({ length: options.workers }, () => worker), { concurrency: "unbounded" }))
    yield* Effect.addFinalizer(() => Queue.shutdown(waiting))

    const submit = (key: K, then: Then): Effect.Effect<void> => Effect.asVoid(Queue.offer(waiting, [key, then] as const))
    const lookup = (key: K): Effect.Effect<A, E> =>
      Effect.flatMap(Deferred.make<A, E>(), (deferred) =>
        Effect.zipRight(submit(key, (answer) => Deferred.done(deferred, answer)), Deferred.await(deferred)))
    return { lookup, submit } satisfies Batcher<K, A, E>
  })
