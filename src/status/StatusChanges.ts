import * as PgClient from "@effect/sql-pg/PgClient"
import { Context, Duration, Effect, Layer, Queue, Ref, Schedule, Schema, Stream } from "effect"
import { gather } from "../db/batching.js"
import { listen } from "../db/listen.js"

export type ChangeListener = (change: { readonly userId: string; readonly platform: string } | "all") => Effect.Effect<void>

export interface StatusChangesService {
  /**
   * Tells this process's listeners at once, and queues the change for other processes:
   * a background fiber sends what has queued in batched NOTIFYs, so bulk writers stay cheap.
   */
  readonly publish: (userId: string, platform: string) => Effect.Effect<void>
  /** publish for changes made together (a batch of refreshes stored in one statement). */
  readonly publishMany: (changes: Iterable<{ readonly userId: string; readonly platform: string }>) => Effect.Effect<void>
  readonly subscribe: (listener: ChangeListener) => Effect.Effect<void>
}

/**
 * Told of every write to a user's connections, so cached statuses can be dropped here and,
 * across replicas, in every process listening on the same database.
 */
export class StatusChanges extends Context.Tag("Integrations/StatusChanges")<StatusChanges, StatusChangesService>() {
  /** For processes that keep no status cache. */
  static readonly None = Layer.succeed(StatusChanges, { publish: () => Effect.void, publishMany: () => Effect.void, subscribe: () => Effect.void })
}

export const CHANNEL = "oauth_status_changes"

/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
export const MAX_PAYLOAD_BYTES = 7900

/** How long a change waits for others before it is sent to other processes (this process is told at once). */
const NOTIFY_LINGER = Duration.millis(20)

/** How long changes whose NOTIFY failed wait before they are sent again. */
const NOTIFY_RETRY_DELAY = Duration.seconds(1)

/** Changes taken from the queue per round; the rest wait for the next. */
const MAX_BATCH = 5000

type Pair = readonly [userId: string, platform: string]

/** `[[user, platform], ...]`; `{u, p}` is what processes before batching sent (rolling upgrades). */
const Payload = Schema.parseJson(Schema.Union(
  Schema.Array(Schema.Tuple(Schema.String, Schema.String)),
  Schema.Struct({ u: Schema.String, p: Schema.String })
))

/** The pairs, without repeats, in JSON arrays of at most MAX_PAYLOAD_BYTES. */
export const payloads = (pairs: Iterable<Pair>): ReadonlyArray<string> => {
  const seen = new Set<string>()
  const out: Array<string> = []
  let current: Array<string> = []
  let bytes = 2
  for (const pair of pairs) {
    const item = JSON.stringify(pair)
    if (seen.has(item)) continue
    seen.add(item)
    const size = Buffer.byteLength(item, "utf8") + 1
    // One pair too large to ever fit is not sendable; identifiers are far shorter than this.
    if (size + 2 > MAX_PAYLOAD_BYTES) continue
    if (bytes + size > MAX_PAYLOAD_BYTES) {
      out.push(`[${current.join(",")}]`)
      current = []
      bytes = 2
    }
    current.push(item)
    bytes += size
  }
  if (current.length > 0) out.push(`[${current.join(",")}]`)
  return out
}

/**
 * NOTIFY is sent with `select pg_notify(...)` (the client's notify helper binds a parameter
 * that NOTIFY refuses), one statement per batch of changes. When the LISTEN connection
 * drops, listeners are told to drop everything at once and again once listening resumes,
 * since notifications sent meanwhile were missed.
 */
export const StatusChangesLive = Layer.scoped(
  StatusChanges,
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const listeners = yield* Ref.make<ReadonlyArray<ChangeListener>>([])
    const tell = (change: Parameters<ChangeListener>[0]) =>
      Effect.flatMap(Ref.get(listeners), (all) => Effect.forEach(all, (l) => l(change), { discard: true }))

    const received = (payload: string) =>
      Schema.decode(Payload)(payload).pipe(
        Effect.flatMap((decoded) => {
          const pairs: ReadonlyArray<Pair> = "u" in decoded ? [[decoded.u, decoded.p]] : decoded
          return Effect.forEach(pairs, ([userId, platform]) => tell({ userId, platform }), { discard: true })
        }),
        Effect.catchTag("ParseError", () => Effect.logWarning("ignored a malformed status notification"))
      )

    // Only a process with listeners (one that keeps a status cache) listens: a monitor-only
    // process would otherwise receive back every notification it sends.
    const scope = yield* Effect.scope
    const startListening = yield* Effect.once(listen(sql.config, CHANNEL, tell("all")).pipe(
      Stream.runForEach(received),
      Effect.tapErrorCause(() =>
        Effect.logWarning("status notifications lost; listening again").pipe(Effect.zipRight(tell("all")))),
      Effect.retry(Schedule.spaced("1 second")),
      Effect.forkIn(scope)
    ))

    const pending = yield* Queue.unbounded<Pair>()
    /** Whether every NOTIFY went out. */
    const send = (pairs: Iterable<Pair>) =>
      Effect.forEach(payloads(pairs), (payload) => sql`select pg_notify(${CHANNEL}, ${payload})`, { discard: true }).pipe(
        Effect.as(true),
        Effect.catchAll((e) => Effect.logWarning("could not notify other processes of status changes").pipe(Effect.annotateLogs("error", e.message)).pipe(Effect.as(false)))
      )
    // A change waits NOTIFY_LINGER for others to go with it, and whatever queued while a
    // batch was being sent goes in the next one: a burst costs a few statements. A batch that
    // could not be sent (the database unavailable) is queued again and tried after
    // NOTIFY_RETRY_DELAY, so other processes' caches catch up once the database answers.
    const sender = Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(restore(gather(pending, MAX_BATCH, NOTIFY_LINGER)), (pairs) =>
        Effect.flatMap(send(pairs), (sent) =>
          sent ? Effect.void : Queue.offerAll(pending, pairs).pipe(Effect.zipRight(restore(Effect.sleep(NOTIFY_RETRY_DELAY))))))
    ).pipe(Effect.forever)
    // Registered before the sender starts, so it runs after the sender stops: nothing queued is lost.
    yield* Effect.addFinalizer(() => Effect.flatMap(Queue.takeAll(pending), send))
    yield* Effect.forkScoped(sender)

    const publishMany = (changes: Iterable<{ readonly userId: string; readonly platform: string }>) =>
      Effect.suspend(() => {
        const pairs = Array.from(changes, ({ platform, userId }): Pair => [userId, platform])
        return Effect.flatMap(Ref.get(listeners), (all) =>
          Effect.zipRight(
            all.length === 0 ? Effect.void : Effect.forEach(pairs, ([userId, platform]) => tell({ userId, platform }), { discard: true }),
            Queue.offerAll(pending, pairs)
          )).pipe(Effect.asVoid)
      })

    return {
      subscribe: (listener) => Ref.update(listeners, (all) => [...all, listener]).pipe(Effect.zipRight(startListening)),
      publish: (userId, platform) => publishMany([{ userId, platform }]),
      publishMany
    }
  })
)
