import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Duration, Effect, Exit, Metric, Option } from "effect"
import { withTags } from "../observability/labels.js"
import { httpRequestDuration, httpRequests } from "../observability/metrics.js"

export const MAX_BODY_BYTES = 64 * 1024

/**
 * The route template of a path, for metric labels: ids become placeholders and anything
 * unknown is "other", so a caller cannot grow the number of series.
 */
export const routeOf = (path: string, platforms: ReadonlySet<string>): string => {
  const parts = path.split("?")[0]?.split("/").filter((p) => p.length > 0) ?? []
  const platform = (p: string | undefined) => (p !== undefined && platforms.has(p) ? p : "{platform}")
  if (parts[0] === "v1" && parts[1] === "users" && parts.length >= 4) {
    const rest = parts.slice(3)
    if (rest[0] === "connections" && rest.length >= 2) return ["/v1/users/{user_id}/connections", platform(rest[1]), ...rest.slice(2)].join("/")
    return ["/v1/users/{user_id}", ...rest].join("/")
  }
  if (parts[0] === "oauth" && parts[2] === "callback" && parts.length === 3) return `/oauth/${platform(parts[1])}/callback`
  const known = ["/v1/platforms", "/health", "/health/providers", "/metrics", "/docs", "/openapi.json"]
  const plain = `/${parts.join("/")}`
  return known.includes(plain) ? plain : "other"
}

/** Tagged metrics are made once per (method, route, status), not per request. */
const memo = <A>(make: (key: string) => A) => {
  const made = new Map<string, A>()
  return (key: string) => {
    let found = made.get(key)
    if (found === undefined) {
      found = make(key)
      made.set(key, found)
    }
    return found
  }
}

/**
 * Counts and times every request by method, route template and status, and logs failures.
 * A log line names the route template, never the URL: a callback's query holds a code and a state.
 */
export const observeRequests = (platforms: ReadonlySet<string>) => {
  const routes = memo((path: string) => routeOf(path, platforms))
  const counters = memo((key: string) => {
    const [method = "", route = "", status = ""] = key.split(" ")
    return withTags(httpRequests, { method, route, status })
  })
  const timers = memo((key: string) => {
    const [method = "", route = ""] = key.split(" ")
    return withTags(httpRequestDuration, { method, route })
  })
  return <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const route = routes(request.url.split("?")[0] ?? "")
      const start = yield* Effect.clockWith((c) => c.currentTimeNanos)
      return yield* app.pipe(
        Effect.onExit((exit) =>
          Effect.gen(function*() {
            const end = yield* Effect.clockWith((c) => c.currentTimeNanos)
            const seconds = Duration.toSeconds(Duration.nanos(end - start))
            const status = Exit.isSuccess(exit) ? exit.value.status : 500
            yield* Metric.increment(counters(`${request.method} ${route} ${status}`))
            yield* Metric.update(timers(`${request.method} ${route}`), seconds)
            if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
              yield* Effect.logError("request failed", exit.cause).pipe(
                Effect.annotateLogs({ method: request.method, route, status, duration_ms: Math.round(seconds * 1000) })
              )
            }
          })
        )
      )
    })
}

/**
 * Request bodies over 64 KiB are refused with 413: at once when Content-Length says so,
 * and otherwise when reading passes the limit.
 */
export const bodyLimit = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const declared = Number(request.headers["content-length"] ?? "0")
    if (declared > MAX_BODY_BYTES) {
      return HttpServerResponse.unsafeJson(
        { _tag: "PayloadTooLarge", message: `Request bodies are limited to ${MAX_BODY_BYTES} bytes` },
        { status: 413 }
      )
    }
    return request.method === "GET" || request.method === "HEAD"
      ? yield* app
      : yield* HttpIncomingMessage.withMaxBodySize(app, Option.some(MAX_BODY_BYTES))
  })

const problem = (status: number, tag: string, message: string) =>
  HttpServerResponse.unsafeJson({ _tag: tag, message }, { status })

/**
 * What the framework would answer with an empty body, answered with a typed one: an
 * unreadable body (400), one past the limit (413), an unknown route (404). Declared
 * errors pass through; a defect is a bug: logged, and answered 500 without its details.
 */
export const errorResponses = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  app.pipe(
    Effect.catchAllCause((cause) => {
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
      // The framework may carry these as defects beside the response it prepared.
      const failure = Option.getOrUndefined(Cause.find(cause, (reason) => {
        const error = reason._tag === "Fail" ? reason.error : reason._tag === "Die" ? reason.defect : undefined
        return error instanceof HttpServerError.RequestError || error instanceof HttpServerError.RouteNotFound
          ? Option.some(error)
          : Option.none()
      }))
      if (failure instanceof HttpServerError.RequestError) {
        return Effect.succeed(
          failure.reason === "Decode" && String(failure.cause).includes("maxBytes exceeded")
            ? problem(413, "PayloadTooLarge", `Request bodies are limited to ${MAX_BODY_BYTES} bytes`)
            : problem(400, "BadRequest", "The request body could not be read: send valid JSON")
        )
      }
      if (failure instanceof HttpServerError.RouteNotFound) return Effect.succeed(problem(404, "NotFound", "No such route"))
      // Declared errors are encoded by the API with their status.
      if (Option.isSome(Cause.failureOption(cause))) return Effect.failCause(cause)
      return Effect.logError("unexpected failure while serving a request", cause).pipe(
        Effect.as(problem(500, "InternalError", "Internal error"))
      )
    })
  )
