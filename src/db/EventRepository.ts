import * as SqlClient from "@effect/sql/SqlClient"
import type { Fragment } from "@effect/sql/Statement"
import { Effect, Schema } from "effect"
import { ConnectionEvent, type EventKind } from "../domain/Connection.js"
import { orUnavailable } from "./Database.js"

/** An event about a connection, written with the change that causes it. Never a token, code, verifier or secret. */
export interface OutcomeEvent {
  readonly kind: EventKind
  readonly detail: Record<string, unknown>
}

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

/**
 * The insert of `events` for every row of the CTE `changed` (id, user_id, platform, ...), to
 * be put in the statement that makes the change, so that a change and its events are
 * written together or not at all (a warning lost between two statements is never sent).
 * `rowDetail`, a jsonb expression over `changed`, is merged into each event's detail.
 */
export const insertEventsForChanged = (
  sql: SqlClient.SqlClient,
  events: ReadonlyArray<OutcomeEvent>,
  now: Date,
  rowDetail?: Fragment
) =>
  sql`insert into oauth_events (connection_id, user_id, platform, kind, detail, at)
    select changed.id, changed.user_id, changed.platform, e.kind,
      ${rowDetail === undefined ? sql`e.detail` : sql`e.detail || ${rowDetail}`}, ${now}
    from changed cross join jsonb_to_recordset(${JSON.stringify(events)}::jsonb) as e(kind text, detail jsonb)`

/**
 * Like insertEventsForChanged, for a CTE `changed` whose rows carry their own events
 * (`outcome_events`, a jsonb array of {kind, detail}) and time (`event_at`).
 */
export const insertOwnEventsForChanged = (sql: SqlClient.SqlClient) =>
  sql`insert into oauth_events (connection_id, user_id, platform, kind, detail, at)
    select changed.id, changed.user_id, changed.platform, e.kind, e.detail, changed.event_at
    from changed cross join jsonb_to_recordset(changed.outcome_events) as e(kind text, detail jsonb)`

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
        }),

      /**
       * Deletes at most `limit` events of any kind older than `before`, in one statement; gives
       * how many. Rows another process is deleting are skipped, not waited for.
       */
      deleteBefore: (before: Date, limit: number) =>
        sql<{ readonly n: number }>`with deleted as (
            delete from oauth_events where id in (
              select id from oauth_events where at < ${before} limit ${limit} for update skip locked
            ) returning 1
          ) select count(*)::int as n from deleted`.pipe(Effect.map((rows) => rows[0]?.n ?? 0), orUnavailable),

      /**
       * Like deleteBefore, for `refreshed` events only (one per refresh, kept shorter). Its own
       * partial index finds them without reading the other kinds' rows kept longer.
       */
      deleteRefreshedBefore: (before: Date, limit: number) =>
        sql<{ readonly n: number }>`with deleted as (
            delete from oauth_events where id in (
              select id from oauth_events where kind = 'refreshed' and at < ${before} limit ${limit} for update skip locked
            ) returning 1
          ) select count(*)::int as n from deleted`.pipe(Effect.map((rows) => rows[0]?.n ?? 0), orUnavailable)
    } as const
  })
}) {}
