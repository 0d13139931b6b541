import { layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Either, Layer, Schedule } from "effect"
import { expect } from "vitest"
import type { WebhookSettings } from "../../src/config/Settings.js"
import { parseWebhookSecret, type WebhookEndpoint } from "../../src/config/webhooks.js"
import { TokenMonitor } from "../../src/monitor/TokenMonitor.js"
import type { WebhookEventType } from "../../src/domain/webhookEvents.js"
import { WebhooksLive } from "../../src/webhooks/DeliveryWorker.js"
import { AuthUrlPayloadJson, WebhookDeliveriesResponse } from "../../src/http/schemas.js"
import { TOKEN_KEY, type Instance } from "../support/app.js"
import { testSettings } from "../support/config.js"
import { call, confirm, confirmationOf, connect, json, post } from "../support/flow.js"
import { Harness, HarnessLive } from "../support/harness.js"
import { newWebhookSecret, type Receipt, startReceiver } from "../support/webhookReceiver.js"

/** Transient failures fail fast, and no breaker opens while a test makes them on purpose. */
const env = { RETRY_MAX: "0", RETRY_INITIAL_DELAY: "10ms", BREAKER_FAILURE_THRESHOLD: "1000" }

export const endpointOf = (name: string, url: string, secrets: ReadonlyArray<string>, events?: ReadonlyArray<WebhookEventType>): WebhookEndpoint => ({
  name,
  url: new URL(url),
  secrets: secrets.map((s) => Either.getOrThrow(parseWebhookSecret(s))),
  events: events === undefined ? null : new Set(events)
})

/** An instance whose delivery worker sends to `endpoints`; both stop with the scope. */
const withWebhooks = (endpoints: ReadonlyArray<WebhookEndpoint>, more: Partial<WebhookSettings> = {}) =>
  Effect.gen(function*() {
    const { startAnother } = yield* Harness
    const instance = yield* startAnother({ webhooks: { ...testSettings().webhooks, enabled: true, endpoints, ...more } })
    yield* Layer.build(WebhooksLive).pipe(Effect.provide(instance.context))
    return instance
  })

const sqlOf = (instance: Instance) => Effect.provide(PgClient.PgClient, instance.context)

const deliveriesOf = (instance: Instance, endpoint: string) =>
  Effect.flatMap(sqlOf(instance), (sql) =>
    sql<{ id: string; messageId: string; type: string; status: string; attempts: number; body: string; nextAttemptAt: Date; lastError: string | null }>`
      select id, message_id, type, status, attempts, body, next_attempt_at, last_error from webhook_deliveries
      where endpoint = ${endpoint} order by id`)

const promise = <A>(make: () => Promise<A>) => Effect.promise(make)

/** `effect` run again every 50 ms until its value satisfies `done` (then that value), for at most `timeout`. */
const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>, done: (a: A) => boolean, timeout: Duration.DurationInput = "15 seconds") =>
  effect.pipe(
    Effect.filterOrFail(done, () => "not yet" as const),
    Effect.retry({ while: (e) => e === "not yet", schedule: Schedule.spaced("50 millis") }),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error("the awaited state did not come") }),
    Effect.orDie
  )

/** The browser's part of a flow up to the callback: the confirmation code the application is handed. */
const callbackCode = (instance: Instance, userId: string, platform: string) =>
  Effect.gen(function*() {
    const authorize = yield* post(instance, `/v1/users/${userId}/connections/${platform}/authorize`)
    const { auth_url } = yield* json(authorize, AuthUrlPayloadJson)
    const consent = yield* promise(() => fetch(auth_url, { redirect: "manual" }))
    const back = new URL(consent.headers.get("location") ?? "")
    const callback = yield* call(instance, `/oauth/${platform}/callback${back.search}`, { key: null })
    const page = yield* promise(() => callback.clone().text())
    const code = confirmationOf(callback, page)
    if (code === undefined) return yield* Effect.dieMessage("the callback gave no confirmation code")
    return code
  })

const typesOf = (receipts: ReadonlyArray<Receipt>) => receipts.map((r) => r.payload?.type)

layer(HarnessLive({ env }), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
  it.effect("every event type of the real flows reaches the endpoint once, signed as Standard Webhooks says, without a secret in it", () =>
    Effect.gen(function*() {
      const { fakes } = yield* Harness
      const secret = newWebhookSecret()
      const receiver = yield* Effect.acquireRelease(promise(() => startReceiver([secret])), (r) => promise(() => r.close()))
      // Failures announced at the second one in a row, whatever the time between them.
      const instance = yield* withWebhooks([endpointOf("app", receiver.url, [secret])], { failingAfter: Duration.zero })
      const user = "wh-flow"
      const refresh = (platform: string) => post(instance, `/v1/users/${user}/connections/${platform}/refresh`)

      // connected, then needs_reauth, then disconnected
      yield* connect(instance, user, "gsc")
      fakes.gsc.revokeAll()
      expect((yield* refresh("gsc")).status).toBe(409)
      // confirmation_refused: the grant confirmed for another user than the one who started the flow
      const code = yield* callbackCode(instance, user, "bing")
      expect((yield* confirm(instance, "wh-someone-else", "bing", code)).status).toBe(403)
      // imported, then expiring_soon (a token that cannot be refreshed, expiring within the warning)
      const imported = yield* call(instance, `/v1/users/${user}/connections/wix/import`, {
        method: "PUT",
        key: TOKEN_KEY,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ access_token: "wh-imported-access-token-0123456789", expires_at: new Date(Date.now() + 2 * 86_400_000).toISOString() })
      })
      expect(imported.status).toBe(200)
      yield* Effect.flatMap(Effect.provide(TokenMonitor, instance.context), (monitor) => monitor.tick)
      // revoked: a token that does not expire, rejected when validated
      yield* connect(instance, user, "wordpress")
      fakes.wordpress.revokeAll()
      expect((yield* refresh("wordpress")).status).toBeGreaterThanOrEqual(400)
      // refresh_failing once however many failures, then recovered
      yield* connect(instance, user, "forge")
      fakes.forge.setBehaviour("token", "unavailable")
      for (let i = 0; i < 3; i++) expect((yield* refresh("forge")).status).toBe(503)
      fakes.forge.setBehaviour("token", "ok")
      expect((yield* refresh("forge")).status).toBe(200)
      // a success after it says nothing more
      expect((yield* refresh("forge")).status).toBe(200)
      expect((yield* call(instance, `/v1/users/${user}/connections/gsc`, { method: "DELETE" })).status).toBe(200)

      const expected = [
        "connection.connected",
        "connection.needs_reauth",
        "connection.confirmation_refused",
        "connection.imported",
        "connection.expiring_soon",
        "connection.connected",
        "connection.revoked",
        "connection.connected",
        "connection.refresh_failing",
        "connection.recovered",
        "connection.disconnected"
      ]
      yield* promise(() => receiver.waitFor((all) => all.length >= expected.length))
      // Nothing more comes: the deliveries are all made.
      yield* eventually(deliveriesOf(instance, "app"), (rows) => rows.every((r) => r.status === "delivered"), "10 seconds")
      const receipts = receiver.receipts
      expect(receipts.every((r) => r.payload !== undefined)).toBe(true)
      // Order is not guaranteed across deliveries: compare as sets with counts, then by event id.
      const byEventId = [...receipts].sort((a, b) => Number(a.id.slice(4)) - Number(b.id.slice(4)))
      expect(typesOf(byEventId)).toEqual(expected)
      expect(new Set(receipts.map((r) => r.id)).size).toBe(receipts.length)

      const byType = new Map(receipts.map((r) => [r.payload?.type, r.payload] as const))
      expect(byType.get("connection.needs_reauth")).toMatchObject({
        id: expect.stringMatching(/^evt_\d+$/),
        data: { user_id: user, platform: "gsc", status: "needs_reauth", reason: "invalid_grant" }
      })
      expect(byType.get("connection.confirmation_refused")?.data).toMatchObject({ user_id: user, platform: "bing", status: "not_connected" })
      expect(byType.get("connection.imported")?.data).toMatchObject({ platform: "wix", status: "connected" })
      expect(byType.get("connection.expiring_soon")?.data).toMatchObject({ platform: "wix", reason: "no_refresh_token" })
      expect(byType.get("connection.revoked")?.data).toMatchObject({ platform: "wordpress", status: "revoked", reason: "token_rejected" })
      expect(byType.get("connection.refresh_failing")?.data).toMatchObject({ platform: "forge", status: "connected", reason: "ProviderUnavailable" })
      expect(byType.get("connection.recovered")?.data).toMatchObject({ platform: "forge", status: "connected", details: { after_failures: 3 } })
      expect(byType.get("connection.disconnected")?.data).toMatchObject({ platform: "gsc", status: "disconnected" })
      for (const receipt of receipts) {
        expect(Date.parse(receipt.payload?.timestamp ?? "")).not.toBeNaN()
        expect(receipt.headers["content-type"]).toBe("application/json")
      }

      // No token, code or secret anywhere: payloads, headers, stored deliveries.
      const stored = yield* deliveriesOf(instance, "app")
      const haystack = [
        ...receipts.map((r) => r.body + JSON.stringify(r.headers)),
        ...stored.map((r) => r.body)
      ].join("\n")
      const secrets = [
        ...Object.values(fakes).flatMap((fake) => fake.issuedTokens()),
        "wh-imported-access-token-0123456789",
        code,
        secret.slice("whsec_".length)
      ]
      expect(secrets.length).toBeGreaterThan(8)
      for (const s of secrets) expect(haystack.includes(s), "a secret was found in a delivery").toBe(false)
    }).pipe(Effect.scoped))

  it.effect("refresh_failing waits for WEBHOOK_FAILING_AFTER and is sent once per run of failures; recovered follows only an alert", () =>
    Effect.gen(function*() {
      const { fakes } = yield* Harness
      const secret = newWebhookSecret()
      const receiver = yield* Effect.acquireRelease(promise(() => startReceiver([secret])), (r) => promise(() => r.close()))
      const instance = yield* withWebhooks([endpointOf("failing", receiver.url, [secret])], { failingAfter: Duration.hours(1) })
      const sql = yield* sqlOf(instance)
      const user = "wh-failing"
      const refresh = () => post(instance, `/v1/users/${user}/connections/forge/refresh`)
      const kinds = () =>
        Effect.map(sql<{ kind: string }>`select kind from oauth_events where user_id = ${user} order by id`, (rows) => rows.map((r) => r.kind))
      yield* connect(instance, user, "forge")

      // One failure, then a success: recorded, but nothing was announced, so nothing is sent.
      fakes.forge.setBehaviour("token", "unavailable")
      expect((yield* refresh()).status).toBe(503)
      fakes.forge.setBehaviour("token", "ok")
      expect((yield* refresh()).status).toBe(200)
      // Failures within the hour: none announced.
      fakes.forge.setBehaviour("token", "unavailable")
      for (let i = 0; i < 3; i++) expect((yield* refresh()).status).toBe(503)
      expect((yield* kinds()).filter((k) => k === "refresh_failing")).toEqual([])
      // As if the first of them were two hours old: the next failure announces, the ones after it do not.
      yield* sql`update oauth_connections set failing_since = now() - interval '2 hours' where user_id = ${user}`
      for (let i = 0; i < 3; i++) expect((yield* refresh()).status).toBe(503)
      fakes.forge.setBehaviour("token", "ok")
      expect((yield* refresh()).status).toBe(200)
      expect(yield* kinds()).toEqual([
        "connected",
        "refresh_failed",
        "refreshed",
        "recovered",
        ...Array(6).fill("refresh_failed").flatMap((k, i) => (i === 3 ? [k, "refresh_failing"] : [k])),
        "refreshed",
        "recovered"
      ])
      yield* promise(() => receiver.waitFor((all) => all.length >= 3))
      yield* eventually(deliveriesOf(instance, "failing"), (rows) => rows.every((r) => r.status === "delivered"))
      const sent = [...receiver.receipts].sort((a, b) => Number(a.id.slice(4)) - Number(b.id.slice(4)))
      expect(typesOf(sent)).toEqual(["connection.connected", "connection.refresh_failing", "connection.recovered"])
      expect(sent[1]?.payload?.data.details).toMatchObject({ failures: 4 })
    }).pipe(Effect.scoped))

  it.effect("500, then a timeout, then refused connections, then back: delivered once it answers, with the same webhook-id on every attempt", () =>
    Effect.gen(function*() {
      const secret = newWebhookSecret()
      const receiver = yield* Effect.acquireRelease(promise(() => startReceiver([secret])), (r) => promise(() => r.close()))
      receiver.setBehaviour(({ attempt }) => (attempt === 1 ? 500 : attempt === 2 ? "hang" : 200))
      const instance = yield* withWebhooks([endpointOf("flaky", receiver.url, [secret])], { timeout: Duration.millis(500) })
      const sql = yield* sqlOf(instance)
      yield* connect(instance, "wh-flaky", "gsc")
      // 500, retried at once; then no answer within the timeout
      yield* promise(() => receiver.waitFor((all) => all.length >= 2))
      const afterTimeout = yield* eventually(deliveriesOf(instance, "flaky"), (rows) => rows[0]?.attempts === 2, "10 seconds")
      expect(afterTimeout[0]).toMatchObject({ status: "pending", lastError: "timeout" })
      // the third attempt is about 5 s later (jittered by a fifth)
      const wait = afterTimeout[0]!.nextAttemptAt.getTime() - Date.now()
      expect(wait).toBeGreaterThan(2_500)
      expect(wait).toBeLessThanOrEqual(6_000)
      yield* promise(() => receiver.stop())
      // As if the 5 s had passed: the attempt finds the endpoint down.
      yield* sql`update webhook_deliveries set next_attempt_at = now() where endpoint = 'flaky'`
      const down = yield* eventually(deliveriesOf(instance, "flaky"), (rows) => rows[0]?.attempts === 3, "10 seconds")
      expect(down[0]).toMatchObject({ status: "pending", lastError: "connection refused" })
      const nextWait = down[0]!.nextAttemptAt.getTime() - Date.now()
      expect(nextWait).toBeGreaterThan(3 * 60_000)
      expect(nextWait).toBeLessThanOrEqual(6 * 60_000)
      // Back, and the 5 minutes passed.
      yield* promise(() => receiver.restart())
      yield* sql`update webhook_deliveries set next_attempt_at = now() where endpoint = 'flaky'`
      yield* promise(() => receiver.waitFor((all) => all.some((r) => r.answered === 200)))
      const done = yield* eventually(deliveriesOf(instance, "flaky"), (rows) => rows[0]?.status === "delivered", "10 seconds")
      expect(done).toHaveLength(1)
      expect(done[0]?.attempts).toBe(4)
      const ids = new Set(receiver.receipts.map((r) => r.id))
      expect(ids).toEqual(new Set([done[0]?.messageId]))
      expect(receiver.receipts.map((r) => r.answered)).toEqual([500, "hang", 200])
      expect(receiver.receipts.every((r) => r.payload?.type === "connection.connected")).toBe(true)
    }).pipe(Effect.scoped))

  it.effect("after the last attempt a delivery is failed; the operations API lists it and sends it again on request", () =>
    Effect.gen(function*() {
      const secret = newWebhookSecret()
      const receiver = yield* Effect.acquireRelease(promise(() => startReceiver([secret])), (r) => promise(() => r.close()))
      receiver.setBehaviour(() => 503)
      const instance = yield* withWebhooks([endpointOf("ops", receiver.url, [secret])])
      const sql = yield* sqlOf(instance)
      yield* connect(instance, "wh-ops", "gsc")
      // Every wait of the schedule skipped: eight attempts, then failed.
      yield* eventually(
        deliveriesOf(instance, "ops").pipe(
          Effect.tap(() => sql`update webhook_deliveries set next_attempt_at = now() where endpoint = 'ops' and status = 'pending'`)
        ),
        (rows) => rows[0]?.status === "failed",
        "30 seconds"
      )
      const [failed] = yield* deliveriesOf(instance, "ops")
      expect(failed).toMatchObject({ status: "failed", attempts: 9, lastError: "HTTP 503" })
      expect(receiver.receipts).toHaveLength(9)

      const listed = yield* json(yield* call(instance, "/v1/webhooks/deliveries?status=failed&limit=10"), WebhookDeliveriesResponse)
      expect(listed.deliveries.find((d) => d.message_id === failed?.messageId)).toMatchObject({
        endpoint: "ops",
        type: "connection.connected",
        status: "failed",
        attempts: 9,
        last_response_status: 503,
        last_error: "HTTP 503",
        next_attempt_at: null
      })
      expect(listed.deliveries.every((d) => d.status === "failed")).toBe(true)
      expect((yield* call(instance, "/v1/webhooks/deliveries?status=lost")).status).toBe(400)
      expect((yield* call(instance, "/v1/webhooks/deliveries?limit=0")).status).toBe(400)
      expect((yield* call(instance, "/v1/webhooks/deliveries", { key: null })).status).toBe(401)

      receiver.setBehaviour(() => 204)
      const retried = yield* post(instance, `/v1/webhooks/deliveries/${failed?.id}/retry`)
      expect(retried.status).toBe(202)
      expect(yield* json(retried)).toMatchObject({ status: "pending", attempts: 0, finished_at: null })
      yield* promise(() => receiver.waitFor((all) => all.some((r) => r.answered === 204)))
      yield* eventually(deliveriesOf(instance, "ops"), (rows) => rows[0]?.status === "delivered", "10 seconds")
      expect(new Set(receiver.receipts.map((r) => r.id)).size).toBe(1)
      expect((yield* post(instance, "/v1/webhooks/deliveries/999999999/retry")).status).toBe(404)
      expect((yield* post(instance, "/v1/webhooks/deliveries/abc/retry")).status).toBe(400)

      // Paging: newest first, next_before leads to the older ones.
      const first = yield* json(yield* call(instance, "/v1/webhooks/deliveries?limit=1"), WebhookDeliveriesResponse)
      expect(first.deliveries).toHaveLength(1)
      if (first.next_before !== null) {
        const older = yield* json(yield* call(instance, `/v1/webhooks/deliveries?limit=1&before=${first.next_before}`), WebhookDeliveriesResponse)
        expect(older.deliveries[0]?.id).toBeLessThan(first.deliveries[0]?.id ?? 0)
      }
    }).pipe(Effect.scoped))

  it.effect("every current secret signs: a receiver holding either the old or the new secret verifies each delivery", () =>
    Effect.gen(function*() {
      const [old, next] = [newWebhookSecret(), newWebhookSecret()]
      const oldOnly = yield* Effect.acquireRelease(promise(() => startReceiver([old])), (r) => promise(() => r.close()))
      const newOnly = yield* Effect.acquireRelease(promise(() => startReceiver([next])), (r) => promise(() => r.close()))
      const neither = yield* Effect.acquireRelease(promise(() => startReceiver([newWebhookSecret()])), (r) => promise(() => r.close()))
      yield* withWebhooks([
        endpointOf("old", oldOnly.url, [old, next]),
        endpointOf("new", newOnly.url, [old, next]),
        endpointOf("neither", neither.url, [old, next])
      ])
      const { instance } = yield* Harness
      yield* connect(instance, "wh-rotation", "gsc")
      yield* promise(() => Promise.all([oldOnly, newOnly, neither].map((r) => r.waitFor((all) => all.length >= 1))))
      expect(oldOnly.verified()).toHaveLength(1)
      expect(newOnly.verified()).toHaveLength(1)
      expect(neither.verified()).toHaveLength(0)
      expect(oldOnly.receipts[0]?.signature.split(" ")).toHaveLength(2)
    }).pipe(Effect.scoped))

  it.effect("an endpoint gets only the types it asks for; a hung endpoint delays neither another endpoint nor the API", () =>
    Effect.gen(function*() {
      const secret = newWebhookSecret()
      const hung = yield* Effect.acquireRelease(promise(() => startReceiver([secret])), (r) => promise(() => r.close()))
      hung.setBehaviour(() => "hang")
      const quick = yield* Effect.acquireRelease(promise(() => startReceiver([secret])), (r) => promise(() => r.close()))
      const filtered = yield* Effect.acquireRelease(promise(() => startReceiver([secret])), (r) => promise(() => r.close()))
      yield* withWebhooks([
        endpointOf("hung", hung.url, [secret]),
        endpointOf("quick", quick.url, [secret]),
        endpointOf("filtered", filtered.url, [secret], ["connection.disconnected"])
      ], { timeout: Duration.seconds(30), concurrency: 2 })
      const { instance } = yield* Harness
      for (const user of ["wh-slow-1", "wh-slow-2", "wh-slow-3"]) yield* connect(instance, user, "gsc")
      // The hung endpoint holds its two slots; the other endpoint gets all three while it does.
      yield* promise(() => hung.waitFor((all) => all.length >= 2))
      yield* promise(() => quick.waitFor((all) => all.length >= 3))
      expect(hung.receipts).toHaveLength(2)
      expect((yield* call(instance, "/v1/users/wh-slow-1/connections")).status).toBe(200)
      expect((yield* call(instance, "/v1/users/wh-slow-1/connections/gsc", { method: "DELETE" })).status).toBe(200)
      yield* promise(() => filtered.waitFor((all) => all.length >= 1))
      yield* promise(() => quick.waitFor((all) => all.length >= 4))
      expect(typesOf(filtered.receipts)).toEqual(["connection.disconnected"])
      hung.setBehaviour(() => 200)
      hung.release(200)

      const metrics = yield* call(instance, "/metrics").pipe(Effect.flatMap((r) => promise(() => r.text())))
      expect(metrics).toMatch(/webhook_deliveries_total\{[^}]*endpoint="quick"[^}]*outcome="delivered"[^}]*\} [1-9]/)
      expect(metrics).toMatch(/webhook_delivery_attempts_total\{[^}]*endpoint="quick"[^}]*result="2xx"/)
      expect(metrics).toContain("webhook_delivery_latency_seconds_bucket")
    }).pipe(Effect.scoped))
})
