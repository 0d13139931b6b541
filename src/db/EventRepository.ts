import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Schema } from "effect"
import { ConnectionEvent, type EventKind } from "../domain/Connection.js"
import { orUnavailable } from "./Database.js"

export interface NewEvent {
  readonly connectionId: string | null
  readonly userId: string
  readonly platform: string
  readonly kind: EventKind
  /** Never a token, code, verifier or secret. */
  readonly detail?: Record<string, unknown>
}

export interface EventPage {
  readonly events: ReadonlyArray<ConnectionEvent>
  /** Pass as `before` to read the next (older) page; null on the last page. */
  readonly nextBefore: number | null
}

/** int8 arrives from node-postgres as a string. */
const EventRow = Schema.Struct({ ...ConnectionEvent.fields, id: Schema.NumberFromString })
const decodeEvents = Schema.decodeUnknown(Schema.Array(EventRow))

export class EventRepository extends Effect.Service<EventRepository>()("Integrations/EventRepository", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return {
      append: (event: NewEvent, now: Date) =>
        sql`insert into oauth_events (connection_id, user_id, platform, kind, detail, at)
          values (${event.connectionId}, ${event.userId}, ${event.platform}, ${event.kind},
            ${JSON.stringify(event.detail ?? {})}::jsonb, ${now})`.pipe(Effect.asVoid, orUnavailable),

      /** Newest first, `limit` per page, keyset-paged by id. */
      listByUser: (userId: string, options: { readonly limit: number; readonly before?: number | undefined }) =>
        Effect.gen(function*() {
          const before = options.before ?? null
          const rows = yield* sql`select id, connection_id, user_id, platform, kind, detail, at
            from oauth_events
            where user_id = ${userId} and (${before}::bigint is null or id < ${before}::bigint)
            order by id desc limit ${options.limit + 1}`.pipe(Effect.flatMap(decodeEvents), orUnavailable)
          const events = rows.slice(0, options.limit)
          const last = events[events.length - 1]
          return { events, nextBefore: rows.length > options.limit && last !== undefined ? last.id : null } satisfies EventPage
        })
    } as const
  })
}) {}
