import * as PgClient from "@effect/sql-pg/PgClient"
import { Context, Effect, Layer, Ref, Schedule, Schema, Stream } from "effect"

export type ChangeListener = (change: { readonly userId: string; readonly platform: string } | "all") => Effect.Effect<void>

export interface StatusChangesService {
  /** Tells this process's listeners at once, and other processes through PostgreSQL NOTIFY. */
  readonly publish: (userId: string, platform: string) => Effect.Effect<void>
  readonly subscribe: (listener: ChangeListener) => Effect.Effect<void>
}

/**
 * Told of every write to a user's connections, so cached statuses can be dropped here and,
 * across replicas, in every process listening on the same database.
 */
export class StatusChanges extends Context.Tag("Integrations/StatusChanges")<StatusChanges, StatusChangesService>() {
  /** For processes that keep no status cache. */
  static readonly None = Layer.succeed(StatusChanges, { publish: () => Effect.void, subscribe: () => Effect.void })
}

export const CHANNEL = "oauth_status_changes"

const Payload = Schema.parseJson(Schema.Struct({ u: Schema.String, p: Schema.String }))

/**
 * NOTIFY is sent with `select pg_notify(...)` (the client's notify helper binds a parameter
 * that NOTIFY refuses). The LISTEN connection is re-established when it drops; since
 * notifications may have been missed meanwhile, listeners are then told to drop everything.
 */
export const StatusChangesLive = Layer.scoped(
  StatusChanges,
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const listeners = yield* Ref.make<ReadonlyArray<ChangeListener>>([])
    const tell = (change: Parameters<ChangeListener>[0]) =>
      Effect.flatMap(Ref.get(listeners), (all) => Effect.forEach(all, (l) => l(change), { discard: true }))

    const remote = sql.listen(CHANNEL).pipe(
      Stream.mapEffect((payload) =>
        Schema.decode(Payload)(payload).pipe(
          Effect.flatMap(({ p, u }) => tell({ userId: u, platform: p })),
          Effect.catchTag("ParseError", () => Effect.logWarning("ignored a malformed status notification"))
        )),
      Stream.runDrain
    )
    yield* Effect.gen(function*() {
      yield* tell("all")
      yield* remote
    }).pipe(
      Effect.tapErrorCause(() => Effect.logWarning("status notifications lost; listening again")),
      Effect.retry(Schedule.spaced("1 second")),
      Effect.forkScoped
    )

    return {
      subscribe: (listener) => Ref.update(listeners, (all) => [...all, listener]),
      publish: (userId, platform) =>
        tell({ userId, platform }).pipe(
          Effect.zipRight(
            sql`select pg_notify(${CHANNEL}, ${JSON.stringify({ u: userId, p: platform })})`.pipe(
              Effect.catchAll((e) => Effect.logWarning("could not notify other processes of a status change", e.message))
            )
          ),
          Effect.asVoid
        )
    }
  })
)
