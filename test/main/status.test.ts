import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import pg from "pg"
import { randomKey } from "../support/config.js"
import { migratedDatabase, scratchDirectory, serviceEnv, startService } from "../support/processes.js"

const key = randomKey("k1")

/** A database in a known state: connections of every status, some due, some failing; a pass; deliveries. */
const seed = async (url: string) => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query(`
    insert into oauth_connections (user_id, platform, status, expires_at, refresh_failures, failing_since)
    select 'st-' || g, 'gsc', 'active', now() + interval '30 minutes', 0, null from generate_series(1, 3) g;
    insert into oauth_connections (user_id, platform, status, expires_at) values ('st-later', 'gsc', 'active', now() + interval '1 day');
    insert into oauth_connections (user_id, platform, status, expires_at, refresh_failures, failing_since)
    values ('st-f1', 'bing', 'active', now() + interval '2 hours', 4, now() - interval '3 hours'),
           ('st-f2', 'bing', 'active', now() + interval '2 hours', 1, now() - interval '10 minutes');
    insert into oauth_connections (user_id, platform, status) values ('st-dead', 'bing', 'needs_reauth'), ('st-gone', 'wix', 'disconnected');
    insert into monitor_passes (finished_at, duration_ms, report)
    values (now() - interval '40 seconds', 812, '{"due": 7, "refreshed": 5, "validated": 0, "warned": 1, "skipped": 0, "needs_reauth": 1, "failed": 1, "failed_by_reason": {"ProviderUnavailable": 1, "RateLimited": 0}}');
    insert into webhook_deliveries (message_id, endpoint, type, body, user_id, platform, status, created_at)
    values ('a', 'app', 'connection.connected', '{}', 'st-1', 'gsc', 'pending', now() - interval '5 minutes'),
           ('b', 'app', 'connection.connected', '{}', 'st-2', 'gsc', 'pending', now()),
           ('c', 'app', 'connection.connected', '{}', 'st-3', 'gsc', 'failed', now());
  `)
  await client.end()
}

describe("status", () => {
  it("prints, from the database, connections per platform and status, those due, those failing, the last pass and the webhooks", async () => {
    const url = await migratedDatabase()
    await seed(url)
    const env = { ...serviceEnv(key), DATABASE_URL: url, LOG_LEVEL: "warn" }
    const json = startService(["status", "--json"], env, scratchDirectory())
    expect((await json.exit).code).toBe(0)
    const report = JSON.parse(json.lines.join("\n")) as Record<string, any>
    expect(report["connections"]).toEqual([
      { platform: "bing", status: "active", count: 2 },
      { platform: "bing", status: "needs_reauth", count: 1 },
      { platform: "gsc", status: "active", count: 4 },
      { platform: "wix", status: "disconnected", count: 1 }
    ])
    expect(report["dueWithinHour"]).toEqual([{ platform: "gsc", count: 3 }])
    expect(report["failing"]).toMatchObject([{ platform: "bing", count: 2, mostFailures: 4 }])
    expect(Date.now() - Date.parse(report["failing"][0].since)).toBeGreaterThan(3 * 3600_000 - 60_000)
    expect(report["lastMonitorPass"]).toMatchObject({ durationMs: 812, report: { due: 7, refreshed: 5, failed: 1 } })
    expect(report["webhooks"]).toMatchObject({ pending: 2, failed: 1 })

    const text = startService(["status"], env, scratchDirectory())
    expect((await text.exit).code).toBe(0)
    const out = text.lines.join("\n")
    expect(out).toMatch(/platform\s+active\s+needs_reauth\s+revoked\s+disconnected/)
    expect(out).toMatch(/gsc\s+4\s+0\s+0\s+0/)
    expect(out).toContain("due within the hour: gsc 3")
    expect(out).toMatch(/failing: bing 2 for 3\.0 h \(at most 4 failures in a row\)/)
    expect(out).toMatch(/last monitor pass: 4\d s ago, 812 ms: due 7, refreshed 5, validated 0, warned 1, skipped 0, needs_reauth 1, failed 1 \(ProviderUnavailable 1\)$/m)
    expect(out).toContain("webhooks: 2 pending (oldest 5 min), 1 failed")
    // No colour codes when the output is not a terminal.
    expect(out).not.toContain("\u001b[")
  }, 60_000)

  it("--url adds a running instance's breakers; an instance that does not answer is one error line", async () => {
    const url = await migratedDatabase()
    const server = createServer((_, response) =>
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({
        providers: [{ platform: "gsc", configured: true, state: "closed", health: null }, { platform: "bing", configured: true, state: "open", health: null }]
      })))
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const env = { ...serviceEnv(key), DATABASE_URL: url, LOG_LEVEL: "warn" }
      const asked = startService(["status", "--url", base], env, scratchDirectory())
      expect((await asked.exit).code).toBe(0)
      expect(asked.lines.join("\n")).toContain("breakers: gsc closed, bing open")
      const down = startService(["status", "--url", "http://127.0.0.1:9"], env, scratchDirectory())
      expect((await down.exit).code).not.toBe(0)
      expect(down.lines.filter((l) => l.startsWith("error: http://127.0.0.1:9/health/providers:"))).toHaveLength(1)
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }, 60_000)
})
