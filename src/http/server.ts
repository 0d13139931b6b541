import { createServer } from "node:http"
import { HttpApiBuilder, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { Api } from "./Api.js"
import { HealthLive } from "./health.js"

export const ApiLive = HttpApiBuilder.api(Api).pipe(Layer.provide(HealthLive))

/** The API on HOST:PORT; logs the address it listens on. */
export const HttpLive = Layer.unwrapEffect(
  Effect.map(AppConfig, (config) =>
    HttpApiBuilder.serve().pipe(
      HttpServer.withLogAddress,
      Layer.provide(ApiLive),
      Layer.provide(NodeHttpServer.layer(createServer, { port: config.port, host: config.host }))
    ))
)
