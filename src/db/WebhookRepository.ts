import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Option, Schema } from "effect"
import { orUnavailable } from "./Database.js"

export const DeliveryStatus = Schema.Literal("pending", "delivered", "failed")
export type DeliveryStatus = typeof DeliveryStatus.Type

/** A delivery as the operations API lists it: what was sent where, and how it went. Never its body's secrets: it has none. */
export const Delivery = Schema.Struct({
  id: Schema.NumberFromString,
  messageId: Schema.String,
  endpoint: Schema.String,
  type: Schema.String,
  userId: Schema.String,
  platform: Schema.String,
  status: DeliveryStatus,
  attempts: Schema.Number,
  nextAttemptAt: Schema.NullOr(Schema.DateFromSelf),
  lastAttemptAt: Schema.NullOr(Schema.DateFromSelf),
  lastResponseStatus: Schema.NullOr(Schema.Number),
  lastError: Schema.NullOr(Schema.String),
  createdAt: Schema.DateFromSelf,
  finishedAt: Schema.NullOr(Schema.DateFromSelf)
})
export type Delivery = typeof Delivery.Type
const decodeDeliveries = Schema.decodeUnknown(Schema.Array(Delivery))

const deliveryColumns = `id, message_id, endpoint, type, user_id, platform, status, attempts,
  case when status = 'pending' then next_attempt_at end as next_attempt_at, last_attempt_at,
  last_response_status, last_error, created_at, finished_at`

/** A delivery a worker holds the lease of: what to post. */
export const ClaimedDelivery = Schema.Struct({
  id: Schema.NumberFromString,
  messageId: Schema.String,
  body: Schema.String,
  /** Attempts made before this one. */
  attempts: Schema.Number,
  createdAt: Schema.DateFromSelf
})
export type ClaimedDelivery = typeof ClaimedDelivery.Type
const decodeClaimed = Schema.decodeUnknown(Schema.Array(ClaimedDelivery))

/** How one attempt ended, to be written under its lease. */
export interface AttemptResult {
  readonly id: number
  /** pending: to be attempted again at `nextAttemptAt`. */
  readonly status: DeliveryStatus
  readonly at: Date
  readonly responseStatus: number | null
  readonly error: string | null
  readonly nextAttemptAt: Date | null
}

export interface EndpointRow {
  readonly name: string
  readonly url: string
  readonly events: ReadonlyArray<string> | null
}

export interface DeliveryPage {
  readonly deliveries: ReadonlyArray<Delivery>
  /** Pass as `before` for the next (older) page; null on the last one. */
  readonly nextBefore: number | null
}

/** The outbox of webhook deliveries (migrations/0006_webhooks.sql): written by a trigger with each event, read by the workers. */
export class WebhookRepository extends Effect.Service<WebhookRepository>()("Integrations/WebhookRepository", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    return {
      /**
       * Makes the stored endpoints those of this configuration: each one written (active), every
       * other one retired and its pending deliveries failed, since no process configured like
       * this one can sign them. Gives the names retired and how many deliveries were failed.
       */
      syncEndpoints: (endpoints: ReadonlyArray<EndpointRow>, now: Date) =>
        sql<{ readonly retired: ReadonlyArray<string> | null; readonly orphaned: number }>`with input as (
            select * from jsonb_to_recordset(${JSON.stringify(endpoints)}::jsonb) as i(name text, url text, events jsonb)
          ), written as (
            insert into webhook_endpoints (name, url, events, active, updated_at)
            select name, url, case when jsonb_typeof(events) = 'array' then array(select jsonb_array_elements_text(events)) end,
              true, ${now}
            from input
            on conflict (name) do update set url = excluded.url, events = excluded.events, active = true,
              updated_at = excluded.updated_at
            returning name
          ), retired as (
            update webhook_endpoints set active = false, updated_at = ${now}
            where active and name not in (select name from input)
            returning name
          ), orphaned as (
            update webhook_deliveries set status = 'failed', finished_at = ${now}, lease_until = null, lease_owner = null,
              last_error = 'the endpoint is no longer configured'
            where status = 'pending' and endpoint in (select name from retired)
            returning 1
          )
          select (select array_agg(name order by name) from retired) as retired,
            (select count(*) from orphaned)::int as orphaned,
            (select count(*) from written)::int as written`.pipe(
          Effect.map((rows) => ({ retired: rows[0]?.retired ?? [], orphaned: rows[0]?.orphaned ?? 0 })),
          orUnavailable
        ),

      /**
       * Takes the lease of at most `limit` due deliveries of `endpoint` (oldest due first);
       * rows another process is claiming are skipped, and a lease that ran out (its holder died)
       * is taken over.
       */
      claim: (endpoint: string, owner: string, now: Date, leaseUntil: Date, limit: number) =>
        sql`with due as (
            select id from webhook_deliveries
            where endpoint = ${endpoint} and status = 'pending' and next_attempt_at <= ${now}
              and (lease_until is null or lease_until <= ${now})
            order by next_attempt_at, id
            limit ${limit}
            for update skip locked
          )
          update webhook_deliveries d set lease_until = ${leaseUntil}, lease_owner = ${owner}
          from due where d.id = due.id
          returning d.id, d.message_id, d.body, d.attempts, d.created_at`.pipe(Effect.flatMap(decodeClaimed), orUnavailable),

      /**
       * Writes how attempts ended, in one statement, for the rows `owner` still leases (a
       * row whose lease ran out and was taken over is left to its new holder).
       */
      recordAttempts: (owner: string, results: ReadonlyArray<AttemptResult>) =>
        results.length === 0 ? Effect.void : sql`update webhook_deliveries d set
            status = i.status, attempts = d.attempts + 1, last_attempt_at = i.at,
            last_response_status = i.response_status, last_error = i.error,
            next_attempt_at = coalesce(i.next_attempt_at, d.next_attempt_at),
            finished_at = case when i.status = 'pending' then null else i.at end,
            lease_until = null, lease_owner = null
          from unnest(${results.map((r) => r.id)}::bigint[],
            ${results.map((r) => r.status)}::text[], ${results.map((r) => r.at)}::timestamptz[],
            ${results.map((r) => r.responseStatus)}::int[], ${results.map((r) => r.error)}::text[],
            ${results.map((r) => r.nextAttemptAt)}::timestamptz[])
            as i(id, status, at, response_status, error, next_attempt_at)
          where d.id = i.id and d.lease_owner = ${owner}`.pipe(Effect.asVoid, orUnavailable),

      /** Gives back leases taken but not attempted (a stopping worker): due again at once, for any process. */
      releaseLeases: (ids: ReadonlyArray<number>, owner: string) =>
        ids.length === 0 ? Effect.void : sql`update webhook_deliveries set lease_until = null, lease_owner = null
          where id = any(${ids}::bigint[]) and lease_owner = ${owner}`.pipe(Effect.asVoid, orUnavailable),

      /** Newest first, `limit` per page, keyset-paged by id; of one status or all. */
      list: (options: { readonly status?: DeliveryStatus | undefined; readonly limit: number; readonly before?: number | undefined }) =>
        Effect.gen(function*() {
          const status = options.status ?? null
          const before = options.before ?? null
          const rows = yield* sql`select ${sql.literal(deliveryColumns)} from webhook_deliveries
            where (${status}::text is null or status = ${status}::text) and (${before}::bigint is null or id < ${before}::bigint)
            order by id desc limit ${options.limit + 1}`.pipe(Effect.flatMap(decodeDeliveries), orUnavailable)
          const deliveries = rows.slice(0, options.limit)
          const last = deliveries[deliveries.length - 1]
          return { deliveries, nextBefore: rows.length > options.limit && last !== undefined ? last.id : null } satisfies DeliveryPage
        }),

      /**
       * Makes a delivery due now, whatever its status: a delivered or failed one is sent again
       * on a fresh schedule (its webhook-id unchanged, so a receiver that has it can tell); a
       * pending one being attempted keeps its lease. None for an unknown id; `configured` false
       * when its endpoint is no longer configured (nothing is changed then).
       */
      retry: (id: number, now: Date) =>
        Effect.gen(function*() {
          const found = yield* sql<{ readonly configured: boolean }>`select exists (
              select 1 from webhook_endpoints w where w.name = d.endpoint and w.active
            ) as configured
            from webhook_deliveries d where d.id = ${id}`.pipe(orUnavailable)
          const configured = found[0]?.configured
          if (configured === undefined) return Option.none()
          const rows = configured
            ? yield* sql`update webhook_deliveries set status = 'pending', next_attempt_at = ${now}, finished_at = null,
                attempts = case when status = 'pending' then attempts else 0 end
                where id = ${id} returning ${sql.literal(deliveryColumns)}`.pipe(Effect.flatMap(decodeDeliveries), orUnavailable)
            : yield* sql`select ${sql.literal(deliveryColumns)} from webhook_deliveries where id = ${id}`.pipe(
              Effect.flatMap(decodeDeliveries),
              orUnavailable
            )
          return Option.map(Option.fromNullable(rows[0]), (delivery) => ({ configured, delivery }))
        }),

      /**
       * Deletes at most `limit` deliveries of `status` finished before `before`, oldest first;
       * gives how many. Delivered rows are found in id order (the oldest come first), failed
       * ones through their own index.
       */
      deleteFinishedBefore: (status: "delivered" | "failed", before: Date, limit: number) =>
        sql<{ readonly n: number }>`with deleted as (
            delete from webhook_deliveries where id in (
              select id from webhook_deliveries where status = ${status} and finished_at < ${before}
              order by id limit ${limit} for update skip locked
            ) returning 1
          ) select count(*)::int as n from deleted`.pipe(Effect.map((rows) => rows[0]?.n ?? 0), orUnavailable),

      /** When the oldest pending delivery's event was stored; none when nothing is pending. */
      oldestPending: sql<{ readonly at: Date | null }>`select min(created_at) as at from webhook_deliveries where status = 'pending'`.pipe(
        Effect.map((rows) => Option.fromNullable(rows[0]?.at ?? null)),
        orUnavailable
      ),
      /** The deliveries waiting and those given up on, and when the oldest waiting one was stored (for `status`). */
      backlog: sql<{ readonly pending: number; readonly failed: number; readonly oldestPending: Date | null }>`
        select count(*) filter (where status = 'pending')::int as pending, count(*) filter (where status = 'failed')::int as failed,
          min(created_at) filter (where status = 'pending') as oldest_pending
        from webhook_deliveries`.pipe(
        Effect.map((rows) => ({ pending: rows[0]?.pending ?? 0, failed: rows[0]?.failed ?? 0, oldestPending: rows[0]?.oldestPending ?? null })),
        orUnavailable
      )
    } as const
  })
}) {}
