import type { IncomingMessage, ServerResponse } from "node:http"
import { Effect, Either, Exit, Runtime } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import type { DatabaseUnavailable, UnknownPlatform } from "../domain/errors.js"
import { withTags } from "../observability/labels.js"
import { httpRequestDuration, httpRequests } from "../observability/metrics.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { makeAuthenticator } from "./auth.js"
import { retryLaterAnswer } from "./middleware.js"
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
