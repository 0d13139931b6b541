import { HttpApi, HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { DatabaseUnavailable } from "../domain/errors.js"

export const Health = Schema.Struct({
  status: Schema.Literal("ok"),
  database: Schema.Literal("up")
})

export class HealthGroup extends HttpApiGroup.make("health")
  .add(
    HttpApiEndpoint.get("health", "/health")
      .addSuccess(Health)
      .addError(DatabaseUnavailable)
  )
{}

export class Api extends HttpApi.make("oauth-integrations").add(HealthGroup) {}
