import * as SqlClient from "@effect/sql/SqlClient"
import { Clock, Console, Data, Effect, Option } from "effect"
import { orUnavailable } from "../db/Database.js"
import { MonitorPassRepository } from "../db/MonitorPassRepository.js"
import { WebhookRepository } from "../db/WebhookRepository.js"

/** `status --url`: the instance did not answer /health/providers. */
export class InstanceUnreachable extends Data.TaggedError("InstanceUnreachable")<{ readonly url: string; readonly why: string }> {
  override get message() {
    return `${this.url}/health/providers: ${this.why}`
  }
}

export interface StatusReport {
  readonly at: string
  readonly connections: ReadonlyArray<{ readonly platform: string; readonly status: string; readonly count: number }>
  readonly dueWithinHour: ReadonlyArray<{ readonly platform: string; readonly count: number }>
  readonly failing: ReadonlyArray<{ readonly platform: string; readonly count: number; readonly since: string | null; readonly mostFailures: number }>
  readonly lastMonitorPass: { readonly finishedAt: string; readonly durationMs: number; readonly report: Readonly<Record<string, unknown>> } | null
  readonly webhooks: { readonly pending: number; readonly failed: number; readonly oldestPending: string | null }
  readonly breakers?: ReadonlyArray<{ readonly platform: string; readonly state: string }>
}

/** What `status` reads: one statement per section, from the database alone. */
export const readStatus = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const passes = yield* MonitorPassRepository
  const webhooks = yield* WebhookRepository
  const [now] = yield* sql<{ now: Date }>`select now() as now`.pipe(orUnavailable)
  const connections = yield* sql<{ platform: string; status: string; count: number }>`
    select platform, status, count(*)::int as count from oauth_connections group by 1, 2 order by 1, 2`.pipe(orUnavailable)
  const due = yield* sql<{ platform: string; count: number }>`
    select platform, count(*)::int as count from oauth_connections
    where status = 'active' and expires_at is not null and expires_at < now() + interval '1 hour'
    group by 1 order by 1`.pipe(orUnavailable)
  const failing = yield* sql<{ platform: string; count: number; since: Date | null; mostFailures: number }>`
    select platform, count(*)::int as count, min(failing_since) as since, max(refresh_failures)::int as most_failures
    from oauth_connections where status = 'active' and refresh_failures > 0 group by 1 order by 1`.pipe(orUnavailable)
  const hooks = yield* webhooks.backlog
  const last = yield* passes.last
  return {
    at: (now?.now ?? new Date(yield* Clock.currentTimeMillis)).toISOString(),
    connections,
    dueWithinHour: due,
    failing: failing.map((f) => ({ ...f, since: f.since?.toISOString() ?? null })),
    lastMonitorPass: Option.match(last, {
      onNone: () => null,
      onSome: (p) => ({ finishedAt: p.finishedAt.toISOString(), durationMs: p.durationMs, report: p.report })
    }),
    webhooks: { ...hooks, oldestPending: hooks.oldestPending?.toISOString() ?? null }
  } satisfies StatusReport
})

/** The breakers of a running instance, from its /health/providers. */
export const breakersOf = (url: string) =>
  Effect.tryPromise({
    try: async (signal) => {
      const response = await fetch(`${url.replace(/\/+$/, "")}/health/providers`, { signal })
      if (!response.ok) throw new Error(`answered ${response.status}`)
      const body = (await response.json()) as { providers: ReadonlyArray<{ platform: string; state: string }> }
      return body.providers.map((p) => ({ platform: p.platform, state: p.state }))
    },
    catch: (e) => new InstanceUnreachable({ url, why: e instanceof Error ? e.message : String(e) })
  }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new InstanceUnreachable({ url, why: "no answer within 5 s" }) }))

const ago = (from: string, at: string) => {
  const s = Math.max(0, Math.round((Date.parse(at) - Date.parse(from)) / 1000))
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : s < 172_800 ? `${(s / 3600).toFixed(1)} h` : `${Math.round(s / 86_400)} d`
}

const STATUSES = ["active", "needs_reauth", "revoked", "disconnected"] as const

/** The report as an operator reads it: a table of connections, then a line per section. */
export const formatStatus = (report: StatusReport): string => {
  const platforms = [...new Set(report.connections.map((c) => c.platform))]
  const header = ["platform", ...STATUSES]
  const rows = platforms.map((p) => [p, ...STATUSES.map((s) => String(report.connections.find((c) => c.platform === p && c.status === s)?.count ?? 0))])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  const out = [`connections (${report.at})`, ...(rows.length === 0 ? ["  none"] : [line(header), ...rows.map(line)].map((l) => `  ${l}`))]
  out.push(`due within the hour: ${report.dueWithinHour.length === 0 ? "none" : report.dueWithinHour.map((d) => `${d.platform} ${d.count}`).join(", ")}`)
  out.push(
    `failing: ${
      report.failing.length === 0
        ? "none"
        : report.failing.map((f) => `${f.platform} ${f.count}${f.since === null ? "" : ` for ${ago(f.since, report.at)}`} (at most ${f.mostFailures} failures in a row)`).join(", ")
    }`
  )
  const pass = report.lastMonitorPass
  /** The pass's failures by reason, when it recorded them: ` (ProviderUnavailable 1, RateLimited 2)`. */
  const failedByReason = (reasons: unknown) => {
    if (typeof reasons !== "object" || reasons === null) return ""
    const parts = Object.entries(reasons).filter(([, n]) => typeof n === "number" && n > 0).map(([reason, n]) => `${reason} ${String(n)}`)
    return parts.length === 0 ? "" : ` (${parts.join(", ")})`
  }
  out.push(
    pass === null
      ? "last monitor pass: none recorded"
      : `last monitor pass: ${ago(pass.finishedAt, report.at)} ago, ${pass.durationMs} ms: ` +
        ["due", "refreshed", "validated", "warned", "skipped", "needs_reauth", "failed"].map((k) => `${k} ${String(pass.report[k] ?? 0)}`).join(", ") +
        failedByReason(pass.report["failed_by_reason"])
  )
  const hooks = report.webhooks
  out.push(`webhooks: ${hooks.pending} pending${hooks.oldestPending === null ? "" : ` (oldest ${ago(hooks.oldestPending, report.at)})`}, ${hooks.failed} failed`)
  if (report.breakers !== undefined) out.push(`breakers: ${report.breakers.map((b) => `${b.platform} ${b.state}`).join(", ")}`)
  return out.join("\n")
}

/** `status [--json] [--url URL]`. */
export const statusCommand = (options: { readonly json: boolean; readonly url: Option.Option<string> }) =>
  Effect.gen(function*() {
    const report: StatusReport = yield* readStatus
    const withBreakers = Option.isSome(options.url) ? { ...report, breakers: yield* breakersOf(options.url.value) } : report
    yield* Console.log(options.json ? JSON.stringify(withBreakers, null, 2) : formatStatus(withBreakers))
  })
