import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiScalar from "@effect/platform/HttpApiScalar"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { prometheusText } from "../observability/prometheus.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { Api } from "./Api.js"
import { serverLayer } from "./nodeServer.js"
import { StatusCache } from "./StatusCache.js"
import { AuthenticationLive } from "./auth.js"
import { CallbackLive } from "./callback.js"
import { ConnectionsLive } from "./connections.js"
import { EventsLive } from "./events.js"
import { HealthLive } from "./health.js"
import { bodyLimit, callbackHeaders, errorResponses, observeRequests } from "./middleware.js"
import { OnboardingLive } from "./onboarding.js"
import { PlatformsLive } from "./platforms.js"
import { WebhooksLive } from "./webhooks.js"
import { ConnectPageRoutes } from "./connectPage.js"
import { ConnectSessionLive, ConnectSessionsLive, SessionAuthenticationLive } from "./connectSessions.js"

/** GET /metrics: every metric in the Prometheus text format. */
const MetricsRoute = HttpApiBuilder.Router.use((router) =>
  router.get(
    "/metrics",
    Effect.map(prometheusText, (text) => HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" }))
  )
)

/** The contract with its handlers, /docs, /openapi.json and /metrics. */
export const ApiLive = Layer.mergeAll(
  HttpApiScalar.layer({ path: "/docs" }),
  HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" }),
  MetricsRoute,
  ConnectPageRoutes,
  // Inside the app, so that the responses they make are the ones sent.
  HttpApiBuilder.middleware((app) => callbackHeaders(bodyLimit(errorResponses(app))))
).pipe(
  Layer.provideMerge(
    HttpApiBuilder.api(Api).pipe(
      Layer.provide([PlatformsLive, ConnectionsLive, CallbackLive, OnboardingLive, EventsLive, WebhooksLive, ConnectSessionsLive, ConnectSessionLive, HealthLive]),
      Layer.provide([AuthenticationLive, SessionAuthenticationLive])
    )
  )
)

/** Serves ApiLive on an HttpServer, with request metrics and logs. */
export const serveApi = Layer.unwrapEffect(
  Effect.map(ProviderRegistry, (registry) =>
    HttpApiBuilder.serve(observeRequests(new Set(registry.keys))).pipe(
      HttpServer.withLogAddress,
      // observeRequests makes each request's span: the built-in one records the whole URL and every header.
      HttpMiddleware.withTracerDisabledWhen(() => true),
      Layer.provide(ApiLive),
      // find-my-way's default refuses path parameters over 100 characters as unknown routes;
      // user ids may have 200, and a longer one should be a 400 naming user_id.
      Layer.provide(HttpRouter.setRouterConfig({ maxParamLength: 1024 }))
    ))
)

/** The API on HOST:PORT, bounded on slow and idle clients by the HTTP_*_TIMEOUT settings. */
export const HttpLive = Layer.unwrapEffect(
  Effect.map(AppConfig, (config) =>
    serveApi.pipe(Layer.provide(serverLayer({ port: config.port, host: config.host }, config.server)), Layer.provide(StatusCache.Default))
  )
)
