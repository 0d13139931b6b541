import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import { ping } from "../db/Database.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { Api } from "./Api.js"

export const HealthLive = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const registry = yield* ProviderRegistry
    return handlers
      .handle("health", () =>
        ping.pipe(
          Effect.provideService(SqlClient.SqlClient, sql),
          Effect.as({ status: "ok" as const, database: "up" as const })
        ))
      .handle("providers", () =>
        Effect.map(registry.list, (list) => ({
          providers: list.map((p) => ({
            platform: p.key,
            configured: p.configured,
            state: p.state !== "configured" ? p.state : p.health?.state ?? "closed",
            health: p.health
          }))
        })))
  }))
