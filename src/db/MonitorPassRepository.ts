import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Option } from "effect"
import { orUnavailable } from "./Database.js"

export interface LastPass {
  readonly finishedAt: Date
  readonly durationMs: number
  readonly report: Readonly<Record<string, unknown>>
}

/** The last monitor pass, whichever process made it (one row, overwritten by every pass). */
export class MonitorPassRepository extends Effect.Service<MonitorPassRepository>()("Integrations/MonitorPassRepository", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return {
      record: (finishedAt: Date, durationMs: number, report: Readonly<Record<string, unknown>>) =>
        sql`insert into monitor_passes (id, finished_at, duration_ms, report)
          values (1, ${finishedAt}, ${Math.round(durationMs)}, ${JSON.stringify(report)}::jsonb)
          on conflict (id) do update set finished_at = excluded.finished_at, duration_ms = excluded.duration_ms, report = excluded.report
          where monitor_passes.finished_at <= excluded.finished_at`.pipe(Effect.asVoid, orUnavailable),
      last: sql<{ finishedAt: Date; durationMs: number; report: Record<string, unknown> }>`
        select finished_at, duration_ms, report from monitor_passes where id = 1`.pipe(
        Effect.map((rows): Option.Option<LastPass> => Option.fromNullable(rows[0])),
        orUnavailable
      )
    } as const
  })
}) {}
