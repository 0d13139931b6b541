import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { ConnectionStatusJson } from "../../src/http/schemas.js"
import { TokenMonitor } from "../../src/monitor/TokenMonitor.js"
import type { Instance } from "../support/app.js"
import { randomKey, testSettings } from "../support/config.js"
import { call, connect, json } from "../support/flow.js"
import { Harness, HarnessLive } from "../support/harness.js"

/** The key the harness's instance seals with. */
const sealingKey = testSettings().encryptionKeys[0]

const lacking = Effect.flatMap(Harness, (h) => h.startAnother({ encryptionKeys: [randomKey("k2")] }))
const restored = Effect.flatMap(Harness, (h) => h.startAnother({ encryptionKeys: [randomKey("k3"), sealingKey] }))

const tick = (instance: Instance) =>
  Effect.flatMap(TokenMonitor, (m) => m.tick).pipe(Effect.provide(instance.context))

const sql = <A>(instance: Instance, run: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.flatMap(SqlClient.SqlClient, run).pipe(Effect.provide(instance.context), Effect.orDie)

interface Row {
  readonly status: string
  readonly keyId: string | null
  readonly expiresAt: Date | null
  readonly leaseUntil: Date | null
  readonly lastValidatedAt: Date | null
}

const rowOf = (instance: Instance, user: string) =>
  sql(instance, (s) =>
    s<Row>`select status, key_id, expires_at, lease_until, last_validated_at from oauth_connections where user_id = ${user}`).pipe(
    Effect.map((rows) => rows[0])
  )

const eventsOf = (instance: Instance, user: string) =>
  sql(instance, (s) => s<{ kind: string }>`select kind from oauth_events where user_id = ${user} order by id`).pipe(
    Effect.map((rows) => rows.map((r) => r.kind))
  )

const makeDue = (instance: Instance, user: string) =>
  sql(instance, (s) => s`update oauth_connections set expires_at = now() + interval '1 minute' where user_id = ${user}`)

describe("the monitor and a connection sealed under a key it lacks", () => {
  layer(HarnessLive(), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.effect("a monitor without the key neither claims nor marks a due connection sealed under it", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "mon-lost", "gsc")
        yield* makeDue(instance, "mon-lost")
        const before = yield* rowOf(instance, "mon-lost")
        const report = yield* tick(yield* lacking)
        expect(report).toMatchObject({ due: 0, refreshed: 0, needsReauth: 0, failed: {} })
        expect(yield* rowOf(instance, "mon-lost")).toEqual(before)
        expect(before?.leaseUntil).toBeNull()
        expect(yield* eventsOf(instance, "mon-lost")).toEqual(["connected"])
      }).pipe(Effect.scoped))

    it.effect("a monitor without the key does not validate a token that does not expire sealed under it", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "mon-lost-wp", "wordpress")
        const report = yield* tick(yield* lacking)
        expect(report).toMatchObject({ due: 0, validated: 0, needsReauth: 0, failed: {} })
        expect(yield* rowOf(instance, "mon-lost-wp")).toMatchObject({ status: "active", leaseUntil: null, lastValidatedAt: null })
      }).pipe(Effect.scoped))

    it.effect("once the key is restored, the monitor refreshes the connection, re-sealed under the current key", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "mon-restored", "gsc")
        yield* makeDue(instance, "mon-restored")
        yield* tick(yield* lacking)
        const back = yield* restored
        yield* tick(back)
        const row = yield* rowOf(instance, "mon-restored")
        expect(row).toMatchObject({ status: "active", keyId: "k3", leaseUntil: null })
        expect(row?.expiresAt?.getTime()).toBeGreaterThan(Date.now() + 50 * 60 * 1000)
        expect(yield* eventsOf(instance, "mon-restored")).toEqual(["connected", "refreshed"])
        const status = yield* Effect.flatMap(call(back, "/v1/users/mon-restored/connections/gsc"), (r) => json(r, ConnectionStatusJson))
        expect(status).toMatchObject({ connected: true, status: "connected" })
      }).pipe(Effect.scoped))

    it.effect("a ciphertext tampered with under a configured key is still marked needs_reauth", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "mon-tampered", "gsc")
        yield* makeDue(instance, "mon-tampered")
        yield* sql(instance, (s) =>
          s`update oauth_connections set refresh_token = set_byte(refresh_token, 20, get_byte(refresh_token, 20) # 1)
            where user_id = 'mon-tampered'`)
        yield* tick(instance)
        expect((yield* rowOf(instance, "mon-tampered"))?.status).toBe("needs_reauth")
        expect(yield* eventsOf(instance, "mon-tampered")).toEqual(["connected", "needs_reauth"])
      }).pipe(Effect.scoped))
  })
})
