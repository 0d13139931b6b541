import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { SqlClient } from "@effect/sql"
import { pgClientLayer } from "../../src/db/Database.js"
import { randomKey } from "../support/config.js"
import { testPool } from "../support/database.js"
import { eventually, migratedDatabase, scratchDirectory, serviceEnv, startService } from "../support/processes.js"
import { newWebhookSecret, startReceiver } from "../support/webhookReceiver.js"

const key = randomKey("k1")

/** Runs statements on the test's database. */
const query = <A extends object>(url: string, text: string) =>
  Effect.runPromise(
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<A>(text)).pipe(
      Effect.provide(pgClientLayer(Redacted.make(url), testPool)),
      Effect.scoped
    )
  )

const webhookEnv = (url: string, receiverUrl: string, secret: string, more: Record<string, string> = {}) => ({
  ...serviceEnv(key),
  DATABASE_URL: url,
  MONITOR_ENABLED: "false",
  WEBHOOK_URL: receiverUrl,
  WEBHOOK_SECRETS: secret,
  ...more
})

describe("webhook deliveries across processes", () => {
  it("two service processes deliver one backlog: every delivery made, none twice", async () => {
    const secret = newWebhookSecret()
    const receiver = await startReceiver([secret])
    try {
      const url = await migratedDatabase()
      const env = webhookEnv(url, receiver.url, secret, { WEBHOOK_CONCURRENCY: "8" })
      const services = [startService(["serve"], env, scratchDirectory()), startService(["serve"], env, scratchDirectory())]
      await Promise.all(services.map((s) => s.waitForLine(/delivering webhooks/)))
      const BACKLOG = 2000
      await query(url, `insert into oauth_events (user_id, platform, kind, detail)
        select 'proc-' || g, 'gsc', 'connected', '{}'::jsonb from generate_series(1, ${BACKLOG}) g`)
      await receiver.waitFor((all) => new Set(all.map((r) => r.id)).size >= BACKLOG, 60_000)
      await eventually(async () => {
        const rows = await query<{ n: number }>(url, `select count(*)::int as n from webhook_deliveries where status = 'delivered'`)
        return rows[0]?.n === BACKLOG
      }, 30_000, "every delivery to be recorded delivered")
      const unique = new Set(receiver.receipts.map((r) => r.id)).size
      const duplicates = receiver.receipts.length - unique
      expect(unique).toBe(BACKLOG)
      expect(duplicates).toBe(0)
      expect(receiver.verified()).toHaveLength(BACKLOG)
      for (const s of services) s.signal("SIGTERM")
      const exits = await Promise.all(services.map((s) => s.exit))
      expect(exits.map((e) => e.code)).toEqual([0, 0])
    } finally {
      await receiver.close()
    }
  }, 120_000)

  it("a process killed with SIGKILL mid-delivery leaves a lease that runs out; another process then makes the delivery, with the same webhook-id", async () => {
    const secret = newWebhookSecret()
    const receiver = await startReceiver([secret])
    receiver.setBehaviour(({ attempt }) => (attempt === 1 ? "hang" : 200))
    try {
      const url = await migratedDatabase()
      // A lease of four timeouts: 4 s.
      const env = webhookEnv(url, receiver.url, secret, { WEBHOOK_TIMEOUT: "1s" })
      const first = startService(["serve"], env, scratchDirectory())
      await first.waitForLine(/delivering webhooks/)
      await query(url, `insert into oauth_events (user_id, platform, kind, detail) values ('killed-hook', 'gsc', 'connected', '{}')`)
      await receiver.waitFor((all) => all.length === 1)
      first.signal("SIGKILL", "group")
      await first.exit
      const [held] = await query<{ status: string; attempts: number; leased: boolean }>(url,
        `select status, attempts, lease_until > now() as leased from webhook_deliveries`)
      expect(held).toEqual({ status: "pending", attempts: 0, leased: true })

      const second = startService(["serve"], env, scratchDirectory())
      await receiver.waitFor((all) => all.length === 2, 30_000)
      await eventually(async () => {
        const rows = await query<{ status: string }>(url, `select status from webhook_deliveries`)
        return rows[0]?.status === "delivered"
      }, 30_000, "the delivery to be recorded delivered")
      const [a, b] = receiver.receipts
      expect(a?.id).toBe(b?.id)
      expect(a?.body).toBe(b?.body)
      expect(receiver.verified()).toHaveLength(2)
      second.signal("SIGTERM")
      expect((await second.exit).code).toBe(0)
    } finally {
      await receiver.close()
    }
  }, 120_000)
})
