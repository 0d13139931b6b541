import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type * as Net from "node:net"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Duration, Effect, Either, Exit, Layer, Runtime } from "effect"
import { AppConfig, type ServerSettings } from "../config/AppConfig.js"
import type { DatabaseUnavailable, UnknownPlatform } from "../domain/errors.js"
import { withTags } from "../observability/labels.js"
import { httpRequestDuration, httpRequests } from "../observability/metrics.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { makeAuthenticator } from "./auth.js"
import { apiSecurityHeaders, retryLaterAnswer } from "./middleware.js"
import { PLATFORM_KEY, USER_ID } from "./schemas.js"
import { StatusCache } from "./StatusCache.js"

/** Answers a request and says so, or leaves it (untouched) to the HttpApi app. */
export type FastPath = (request: IncomingMessage, response: ServerResponse) => boolean

// The contract's own identifier patterns: what the fast path takes, the handlers would accept.
const STATUS_PATH = new RegExp(`^/v1/users/(${USER_ID})/connections(?:/(${PLATFORM_KEY}))?$`)

/**
 * The two hottest reads, GET /v1/users/{user_id}/connections and .../connections/{platform},
 * answered from the status cache before the HttpApi pipeline, which costs more than the
 * lookup itself. Only the successful answer, and the 503 of an unavailable database (which the
 * handlers could give only after waiting for it again), are given here: the same
 * authentication and the same cache as the contract's handlers, and the bytes of the
 * contract's own encoding, which the cache keeps. Anything else — another route, a query
 * string, an encoded or invalid id, an unknown platform, a refused key, another failed
 * lookup — goes to the HttpApi app, which answers it as the contract says.
 */
export const makeStatusFastPath = Effect.gen(function*() {
  const cache = yield* StatusCache
  const registry = yield* ProviderRegistry
  const authenticate = makeAuthenticator(yield* AppConfig)
  const clock = yield* Effect.clock
  const runtime = yield* Effect.runtime<never>()
  const platforms = new Set(registry.keys)

  const metricsOf = (route: string) => ({
    count: {
      200: withTags(httpRequests, { method: "GET", route, status: "200" }),
      503: withTags(httpRequests, { method: "GET", route, status: "503" })
    },
    time: withTags(httpRequestDuration, { method: "GET", route })
  })
  const all = metricsOf("/v1/users/{user_id}/connections")
  const one = new Map(registry.keys.map((key) => [key, metricsOf(`/v1/users/{user_id}/connections/${key}`)]))

  return (fallback: (request: IncomingMessage, response: ServerResponse) => void): FastPath => (request, response) => {
    if (request.method !== "GET" || request.url === undefined) return false
    const match = STATUS_PATH.exec(request.url)
    const userId = match?.[1]
    if (userId === undefined) return false
    const platform = match?.[2]
    const metrics = platform === undefined ? all : one.get(platform)
    if (metrics === undefined || (platform !== undefined && !platforms.has(platform))) return false
    if (Either.isLeft(authenticate(request.headers["authorization"]))) return false

    const started = clock.unsafeCurrentTimeNanos()
    const answer: Effect.Effect<{ readonly body: Uint8Array }, DatabaseUnavailable | UnknownPlatform> = platform === undefined
      ? cache.statuses(userId)
      : cache.status(userId, platform)
    const lookup = answer.pipe(
      Effect.map(({ body }) => ({ status: 200 as const, headers: {}, body })),
      // Answered here as the contract does: the handler would wait for the database a second time.
      Effect.catchTag("DatabaseUnavailable", (error) =>
        Effect.map(retryLaterAnswer(error), ({ body, headers }) => ({ status: 503 as const, headers, body: Buffer.from(JSON.stringify(body), "utf8") })))
    )
    Runtime.runCallback(runtime)(lookup, {
      onExit: (exit) => {
        if (Exit.isFailure(exit)) return fallback(request, response)
        const { status, headers, body } = exit.value
        response.writeHead(status, { ...headers, "content-type": "application/json", "content-length": body.length })
        response.end(body)
        metrics.count[status].unsafeUpdate(1, [])
        metrics.time.unsafeUpdate(Number(clock.unsafeCurrentTimeNanos() - started) / 1e9, [])
      }
    })
    return true
  }
})

/**
 * How often Node checks headersTimeout and requestTimeout: every 30 s by default, so a 10 s
 * bound could hold a slow client for 40 s. A quarter of the shorter bound, at most 1 s, cuts it
 * off at most a quarter past its bound, for one pass over the connections in progress.
 */
const checkingInterval = (limits: ServerSettings) =>
  Math.max(50, Math.min(1000, Duration.toMillis(Duration.min(limits.headersTimeout, limits.requestTimeout)) / 4))

/**
 * node:http on `listen`, bounded by `limits` (a request whose headers, or whole body, have not
 * arrived in time is answered 408 by Node itself and its connection closed), serving the
 * HttpApi app with the status fast path in front of it (none when `fast` is false). Built from
 * NodeHttpServer's own pieces: it listens and closes the server, and makes the app's request
 * handler.
 */
export const serverLayer = (listen: Net.ListenOptions, limits: ServerSettings, fast = true) =>
  Layer.scoped(
    HttpServer.HttpServer,
    Effect.gen(function*() {
      const node = createServer({
        headersTimeout: Duration.toMillis(limits.headersTimeout),
        requestTimeout: Duration.toMillis(limits.requestTimeout),
        keepAliveTimeout: Duration.toMillis(limits.keepAliveTimeout),
        connectionsCheckingInterval: checkingInterval(limits)
      })
      const base = yield* NodeHttpServer.make(() => node, listen)
      const makeFast = fast ? yield* makeStatusFastPath : null
      return HttpServer.make({
        address: base.address,
        serve: (app, middleware) =>
          Effect.gen(function*() {
            const handler = middleware === undefined
              ? yield* NodeHttpServer.makeHandler(app)
              : yield* NodeHttpServer.makeHandler(app, middleware)
            const fastPath = makeFast === null ? null : makeFast(handler)
            const listener = (request: IncomingMessage, response: ServerResponse) => {
              // Set on the node response before anything answers, so every answer carries them
              // (writeHead merges them in): the handlers', the framework's own, the fast path's.
              for (const [name, value] of apiSecurityHeaders) response.setHeader(name, value)
              if (fastPath === null || !fastPath(request, response)) handler(request, response)
            }
            yield* Effect.acquireRelease(
              Effect.sync(() => node.on("request", listener)),
              () => Effect.sync(() => node.off("request", listener))
            )
          })
      })
    })
  ).pipe(Layer.provideMerge(NodeHttpServer.layerContext))
