import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type * as Net from "node:net"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Duration, Effect, Layer } from "effect"
import type { ServerSettings } from "../config/Settings.js"
import { makeStatusFastPath } from "./fastPath.js"
import { apiSecurityHeaders } from "./middleware.js"

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
