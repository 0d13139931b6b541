import { HttpApiBuilder } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { ping } from "../db/Database.js"
import { Api } from "./Api.js"

export const HealthLive = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return handlers.handle("health", () =>
      ping.pipe(
        Effect.provideService(SqlClient.SqlClient, sql),
        Effect.as({ status: "ok" as const, database: "up" as const })
      ))
  }))
