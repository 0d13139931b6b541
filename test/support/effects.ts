import { Effect } from "effect"

const hasTag = <E extends { readonly _tag: string }, T extends E["_tag"]>(tag: T) => (e: E): e is Extract<E, { readonly _tag: T }> =>
  e._tag === tag

/** The effect's failure, which must carry `tag`; any other outcome fails the test. */
export const failureTagged = <A, E extends { readonly _tag: string }, R, T extends E["_tag"]>(
  effect: Effect.Effect<A, E, R>,
  tag: T
): Effect.Effect<Extract<E, { readonly _tag: T }>, never, R> =>
  Effect.flip(effect).pipe(
    Effect.orDieWith(() => new Error(`expected a failure tagged ${tag}, got a success`)),
    Effect.filterOrDieMessage(hasTag<E, T>(tag), `expected a failure tagged ${tag}`)
  )
