import { Chunk, Deferred, Effect, Exit, Queue } from "effect"

/**
 * Coalesces lookups made at the same time into one batched lookup. `workers` batches run at
 * once; a free worker takes every lookup waiting (up to `maxBatch`). At low load each lookup
 * is a batch of its own and waits for nothing; under load, one statement answers many
 * requests. The workers run in the caller's scope.
 */
export const makeBatcher = <K, A, E>(
  lookupMany: (keys: ReadonlyArray<K>) => Effect.Effect<(key: K) => A, E>,
  options: { readonly workers: number; readonly maxBatch: number }
) =>
  Effect.gen(function*() {
    const waiting = yield* Queue.unbounded<readonly [K, Deferred.Deferred<A, E>]>()
    const worker = Effect.forever(
      Effect.gen(function*() {
        const batch = Chunk.toReadonlyArray(yield* Queue.takeBetween(waiting, 1, options.maxBatch))
        const exit = yield* Effect.exit(lookupMany(batch.map(([key]) => key)))
        for (const [key, deferred] of batch) {
          yield* Deferred.done(deferred, Exit.map(exit, (answer) => answer(key)))
        }
      })
    )
    yield* Effect.forkScoped(Effect.all(Array.from({ length: options.workers }, () => worker), { concurrency: "unbounded" }))
    yield* Effect.addFinalizer(() => Queue.shutdown(waiting))

    return (key: K): Effect.Effect<A, E> =>
      Effect.flatMap(Deferred.make<A, E>(), (deferred) =>
        Effect.zipRight(Queue.offer(waiting, [key, deferred] as const), Deferred.await(deferred)))
  })
