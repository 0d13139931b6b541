import { randomUUID } from "node:crypto"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Array as Arr, Clock, Duration, Effect, Fiber, Layer, Metric, Option, Queue, Random, Schedule, Stream } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import type { WebhookEndpoint } from "../config/webhooks.js"
import { signDelivery } from "../crypto/webhookSignature.js"
import { listen } from "../db/listen.js"
import { type AttemptResult, type ClaimedDelivery, WebhookRepository } from "../db/WebhookRepository.js"
import { taggedBy } from "../observability/labels.js"
import { webhookAttempts, webhookDeliveries, webhookLatency, webhookOldestPending } from "../observability/metrics.js"
import { nextDeliveryAttempt } from "./retrySchedule.js"
import { makeSender, type Answer } from "./sender.js"

/** The channel the outbox trigger notifies when it writes deliveries. */
export const DELIVERIES_CHANNEL = "webhook_deliveries"

/** How often a worker looks for due deliveries without being notified (retries falling due, a missed notification). */
const POLL = Duration.seconds(1)

/** How often the oldest pending delivery's age is read for the gauge. */
const GAUGE_INTERVAL = Duration.seconds(15)

/** Attempts' results written per statement at most. */
const RESULTS_BATCH = 1000

const deliveriesTagged = taggedBy(webhookDeliveries)
const attemptsTagged = taggedBy(webhookAttempts)
const latencyTagged = taggedBy(webhookLatency)

const resultOf = (answer: Answer) =>
  answer.status === null ? (answer.error === "timeout" ? "timeout" : "error") : `${Math.floor(answer.status / 100)}xx`

const isDelivered = (answer: Answer) => answer.status !== null && answer.status >= 200 && answer.status < 300

/** An attempt's result, with what its metrics and log line need. */
interface Attempted extends AttemptResult {
  readonly result: string
  readonly createdAt: Date
  readonly attempts?: number
}

/**
 * Delivers one endpoint's deliveries until interrupted: `concurrency` attempts in flight at
 * most, each under a lease of four timeouts (time to wait in this process's queue behind two
 * rounds of attempts, to be made, and for its result to be written); at most three times as
 * many rows are held, claimed `concurrency` at a time whenever that much room is free, so the
 * attempts do not wait for a claim's statement. Results are written
 * in batches. Stopping releases the rows not yet attempted, lets the attempts in flight end
 * and writes every result: nothing is held until a lease runs out but a killed process's.
 */
const deliverTo = (endpoint: WebhookEndpoint, doorbell: Queue.Dequeue<void>, owner: string) =>
  Effect.gen(function*() {
    const repository = yield* WebhookRepository
    const { webhooks } = yield* AppConfig
    const concurrency = webhooks.concurrency
    const lease = Duration.times(webhooks.timeout, 4)
    const sender = yield* makeSender(endpoint.url, webhooks.timeout, concurrency)
    const work = yield* Queue.unbounded<ClaimedDelivery>()
    const results = yield* Queue.unbounded<Attempted>()
    const room = yield* Effect.makeSemaphore(3 * concurrency)
    // A claim as soon as `concurrency` rows' room is free: the rows still queued then keep every
    // attempt slot busy while the claim's statement runs.
    const claimSize = concurrency
    const tags = { endpoint: endpoint.name }
    const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

    const warn = (what: string) => (error: { readonly message: string }) =>
      Effect.logWarning(what).pipe(Effect.annotateLogs({ ...tags, error: error.message }))

    /** Claims what there is room for; gives how many rows it claimed. */
    const claim = room.take(claimSize).pipe(
      Effect.zipRight(Effect.uninterruptible(Effect.gen(function*() {
        const t = yield* now
        const claimed = yield* repository.claim(endpoint.name, owner, t, new Date(t.getTime() + Duration.toMillis(lease)), claimSize).pipe(
          Effect.tapError(warn("could not claim webhook deliveries; trying again")),
          Effect.orElseSucceed((): ReadonlyArray<ClaimedDelivery> => []),
          // Not traced: a poll every second would be a trace every second; each delivery is one.
          Effect.withTracerEnabled(false)
        )
        yield* room.release(claimSize - claimed.length)
        yield* Queue.offerAll(work, claimed)
        return claimed.length
      })))
    )
    // A short claim means nothing more is due: wait to be told of new deliveries, or for the next poll.
    const claimer = claim.pipe(
      Effect.tap((n) => n < claimSize ? Queue.take(doorbell).pipe(Effect.timeoutOption(POLL), Effect.zipRight(Queue.takeAll(doorbell))) : Effect.void),
      Effect.forever
    )

    /** What an answer makes of a delivery: delivered, due again later, or failed after its last attempt. */
    const decide = (delivery: ClaimedDelivery, answer: Answer, at: Date, random: number): Attempted => {
      const base = { id: delivery.id, at, responseStatus: answer.status, result: resultOf(answer), createdAt: delivery.createdAt }
      if (isDelivered(answer)) return { ...base, status: "delivered", error: null, nextAttemptAt: null }
      const next = nextDeliveryAttempt(delivery.attempts + 1, at, random)
      return {
        ...base,
        error: answer.error ?? `HTTP ${answer.status}`,
        status: Option.isSome(next) ? "pending" : "failed",
        nextAttemptAt: Option.getOrNull(next),
        attempts: delivery.attempts + 1
      }
    }

    /** One attempt, traced as a span of its own (the endpoint's name, never its URL or a secret). */
    const attempt = (delivery: ClaimedDelivery) =>
      Effect.flatMap(Clock.currentTimeMillis, (started) =>
        Effect.promise(() => sender.post(signDelivery(endpoint.secrets, delivery.messageId, new Date(started), delivery.body), delivery.body)).pipe(
          Effect.flatMap((answer) => Effect.zipWith(Clock.currentTimeMillis, Random.next, (at, random) => decide(delivery, answer, new Date(at), random)))
        )).pipe(
          Effect.tap((result) =>
            Effect.annotateCurrentSpan({
              outcome: result.status === "pending" ? "retrying" : result.status,
              result: result.result,
              ...(result.responseStatus === null ? {} : { "http.response.status_code": result.responseStatus })
            })
          ),
          Effect.withSpan("webhook.delivery", {
            kind: "client",
            root: true,
            captureStackTrace: false,
            attributes: { "webhook.endpoint": endpoint.name, "webhook.delivery_id": delivery.id, "webhook.id": delivery.messageId, attempt: delivery.attempts + 1 }
          })
        )

    const worker = Queue.take(work).pipe(
      Effect.flatMap((delivery) =>
        // An attempt cannot fail (the sender answers every outcome as a value): the slot is given back after it.
        Effect.uninterruptible(attempt(delivery).pipe(Effect.flatMap((result) => Queue.offer(results, result)), Effect.zipRight(room.release(1))))
      ),
      Effect.forever
    )

    /** The metrics of a batch of attempts, counted once per batch and label set. */
    const observe = (batch: ReadonlyArray<Attempted>) =>
      Effect.suspend(() => {
        const attempts = new Map<string, number>()
        const outcomes = new Map<string, number>()
        const latencies: Array<number> = []
        for (const a of batch) {
          attempts.set(a.result, (attempts.get(a.result) ?? 0) + 1)
          const outcome = a.status === "pending" ? "retrying" : a.status
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
          if (a.status === "delivered") latencies.push(Math.max(0, a.at.getTime() - a.createdAt.getTime()) / 1000)
        }
        const latency = latencyTagged(tags)
        // One histogram update per delivery, without an effect each: this runs for every delivery made.
        for (const seconds of latencies) latency.unsafeUpdate(seconds, [])
        return Effect.all([
          Effect.forEach(attempts, ([result, n]) => Metric.incrementBy(attemptsTagged({ ...tags, result }), n), { discard: true }),
          Effect.forEach(outcomes, ([outcome, n]) => Metric.incrementBy(deliveriesTagged({ ...tags, outcome }), n), { discard: true }),
          Effect.forEach(batch, (a) =>
            a.status === "failed"
              ? Effect.logWarning("webhook delivery failed; no attempt is left").pipe(
                Effect.annotateLogs({ ...tags, delivery: a.id, attempts: a.attempts ?? 0, error: a.error ?? "" })
              )
              : Effect.void, { discard: true })
        ], { discard: true })
      })

    const write = (batch: ReadonlyArray<Attempted>) =>
      repository.recordAttempts(owner, batch).pipe(
        Effect.zipRight(observe(batch)),
        Effect.retry(Schedule.exponential("100 millis").pipe(Schedule.upTo(lease))),
        Effect.catchAll(warn("could not record webhook attempts; their deliveries are made again once their leases run out")),
        Effect.withSpan("webhook.record", { root: true, captureStackTrace: false, attributes: { "webhook.endpoint": endpoint.name, deliveries: batch.length } })
      )
    const writer = Queue.takeBetween(results, 1, RESULTS_BATCH).pipe(
      Effect.flatMap((batch) => Effect.uninterruptible(write(Arr.fromIterable(batch)))),
      Effect.forever
    )

    const claiming = yield* Effect.fork(claimer)
    const workers = yield* Effect.forEach(Arr.range(1, concurrency), () => Effect.fork(worker))
    const writing = yield* Effect.fork(writer)
    return yield* Effect.never.pipe(Effect.onInterrupt(() =>
      Effect.gen(function*() {
        yield* Fiber.interrupt(claiming)
        const unstarted = yield* Queue.takeAll(work)
        yield* Effect.ignore(repository.releaseLeases(Arr.map(Arr.fromIterable(unstarted), (d) => d.id), owner))
        yield* Fiber.interruptAll(workers)
        yield* Fiber.interrupt(writing)
        yield* write(Arr.fromIterable(yield* Queue.takeAll(results)))
      })
    ))
  }).pipe(Effect.scoped)

/**
 * The delivery worker of this process (WEBHOOKS_ENABLED): the stored endpoints made those of
 * the configuration, then one delivery loop per endpoint, woken by the outbox trigger's
 * notifications and polling besides. Any number of processes deliver together: each claims
 * with FOR UPDATE SKIP LOCKED under a lease, and a killed one's leases run out and are taken
 * over. A slow or dead endpoint holds only its own loop.
 */
export const WebhooksLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const { webhooks } = yield* AppConfig
    if (!webhooks.enabled) return
    const repository = yield* WebhookRepository
    const sql = yield* PgClient.PgClient
    const t = yield* Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))
    const synced = yield* repository.syncEndpoints(
      // The URL without credentials or query, which may hold a receiver's secret: the table is for operators to read.
      webhooks.endpoints.map((e) => ({ name: e.name, url: `${e.url.origin}${e.url.pathname}`, events: e.events === null ? null : [...e.events] })),
      t
    )
    if (synced.retired.length > 0) {
      yield* Effect.logWarning("webhook endpoints no longer configured were retired; their pending deliveries are failed").pipe(
        Effect.annotateLogs({ endpoints: synced.retired.join(","), failed_deliveries: synced.orphaned })
      )
    }
    if (webhooks.endpoints.length === 0) return
    const owner = `webhooks:${randomUUID()}`
    const doorbells = yield* Effect.forEach(webhooks.endpoints, () => Queue.sliding<void>(1))
    const ring = Effect.forEach(doorbells, (bell) => Queue.offer(bell, undefined), { discard: true })
    yield* listen(sql.config, DELIVERIES_CHANNEL, ring).pipe(
      Stream.runForEach(() => ring),
      Effect.tapErrorCause(() => Effect.logDebug("webhook notifications lost; listening again (polling meanwhile)")),
      Effect.retry(Schedule.spaced("1 second")),
      Effect.forkScoped
    )
    yield* Effect.forEach(webhooks.endpoints, (endpoint, i) => Effect.forkScoped(deliverTo(endpoint, doorbells[i]!, owner)), { discard: true })
    yield* repository.oldestPending.pipe(
      Effect.withTracerEnabled(false),
      Effect.flatMap((oldest) =>
        Effect.flatMap(Clock.currentTimeMillis, (ms) =>
          Metric.set(webhookOldestPending, Option.match(oldest, { onNone: () => 0, onSome: (at) => Math.max(0, ms - at.getTime()) / 1000 })))
      ),
      Effect.ignore,
      Effect.repeat(Schedule.spaced(GAUGE_INTERVAL)),
      Effect.forkScoped
    )
    yield* Effect.logInfo("delivering webhooks").pipe(
      Effect.annotateLogs({ endpoints: webhooks.endpoints.map((e) => e.name).join(","), concurrency: webhooks.concurrency })
    )
  })
).pipe(Layer.provide(WebhookRepository.Default))
