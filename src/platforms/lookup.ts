import { Effect } from "effect"

/**
 * An account lookup that must not fail the connection: on failure the provider data
 * notes which lookup failed and why (the error's tag, never its text).
 */
export const lookupOrNote = <A extends Record<string, unknown>, E extends { readonly _tag: string }, R>(
  name: string,
  lookup: Effect.Effect<A, E, R>
): Effect.Effect<Readonly<Record<string, unknown>>, never, R> =>
  lookup.pipe(
    Effect.catchAll((error: E): Effect.Effect<Readonly<Record<string, unknown>>> =>
      Effect.logWarning(`${name} lookup failed; the connection is kept without it`).pipe(
        Effect.annotateLogs("error", error._tag),
        Effect.as({ [`${name}_lookup_failed`]: error._tag })
      )
    )
  )
