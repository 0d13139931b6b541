import type { IncomingMessage } from "node:http"
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMethod from "@effect/platform/HttpMethod"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as HttpTraceContext from "@effect/platform/HttpTraceContext"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { Cause, Duration, Effect, Either, Exit, Metric, Option, Schema } from "effect"
import { CircuitOpen, DatabaseUnavailable, RateLimited } from "../domain/errors.js"
import { taggedBy } from "../observability/labels.js"
import { httpRequestDuration, httpRequests } from "../observability/metrics.js"
import { callbackSecurityHeaders } from "./callbackPage.js"

export const MAX_BODY_BYTES = 64 * 1024

/**
 * Sent with every answer of the API, whatever makes it: no cache (a browser's, a proxy's) keeps
 * an answer that may hold a token, and no browser reads an answer as another type than it says.
 */
export const apiSecurityHeaders: ReadonlyArray<readonly [string, string]> = [
  ["cache-control", "no-store"],
  ["x-content-type-options", "nosniff"]
]

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
const CONNECTION_TAILS = new Set(["authorize", "confirm", "refresh", "token"])
const PLAIN_ROUTES = new Set([
  "/",
  "/v1/platforms",
  "/v1/connect/sessions",
  "/v1/connect/session",
  "/v1/webhooks/deliveries",
  "/health",
  "/health/providers",
  "/metrics",
  "/docs",
  "/openapi.json",
  "/connect",
  "/connect.js"
])
const SESSION_TAILS = new Set(["authorize"])

/**
 * The route template of a path, for metric labels: only the API's own routes, with ids as
 * placeholders and platforms kept when they are known; anything else is "other", so no
 * caller can add a series.
 */
export const routeOf = (path: string, platforms: ReadonlySet<string>): string => {
  const parts = (path.split("?")[0] ?? "").split("/").filter((p) => p.length > 0)
  const platform = (p: string) => (platforms.has(p) ? p : "{platform}")
  if (parts[0] === "v1" && parts[1] === "users" && parts.length >= 4 && parts.length <= 6) {
    const [section, key, tail] = parts.slice(3)
    const user = "/v1/users/{user_id}"
    if (section === "connections" && key === undefined) return `${user}/connections`
    if (section === "connections" && key !== undefined && tail === undefined) return `${user}/connections/${platform(key)}`
    if (section === "connections" && key !== undefined && tail !== undefined && CONNECTION_TAILS.has(tail)) {
      return `${user}/connections/${platform(key)}/${tail}`
    }
    if (section === "onboarding" && key === "step-5" && tail === undefined) return `${user}/onboarding/step-5`
    if (section === "events" && key === undefined) return `${user}/events`
    return "other"
  }
  if (parts[0] === "oauth" && parts[2] === "callback" && parts.length === 3 && parts[1] !== undefined) return `/oauth/${platform(parts[1])}/callback`
  if (parts[0] === "v1" && parts[1] === "connect" && parts[2] === "session" && parts[3] === "platforms" && parts[4] !== undefined) {
    if (parts.length === 5) return `/v1/connect/session/platforms/${platform(parts[4])}`
    if (parts.length === 6 && SESSION_TAILS.has(parts[5] ?? "")) return `/v1/connect/session/platforms/${platform(parts[4])}/${parts[5]}`
  }
  if (parts[0] === "v1" && parts[1] === "webhooks" && parts[2] === "deliveries" && parts.length === 5 && parts[4] === "retry") {
    return "/v1/webhooks/deliveries/{id}/retry"
  }
  const plain = `/${parts.join("/")}`
  return PLAIN_ROUTES.has(plain) ? plain : "other"
}

/**
 * Counts and times every request by method, route template and status, logs failures, and
 * traces each as a server span (child of the caller's `traceparent`, when it sends one).
 * A log line or a span names the route template, never the URL: a callback's query holds a
 * code and a state.
 */
export const observeRequests = (platforms: ReadonlySet<string>) => {
  // Made once per (method, route, status), a bounded set, not per request.
  const counters = taggedBy(httpRequests)
  const timers = taggedBy(httpRequestDuration)
  return <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const route = routeOf(request.url, platforms)
      const method = METHODS.has(request.method) ? request.method : "other"
      const start = yield* Effect.clockWith((c) => c.currentTimeNanos)
      const parent = HttpTraceContext.fromHeaders(request.headers)
      return yield* app.pipe(
        Effect.tap((response) => Effect.annotateCurrentSpan("http.response.status_code", response.status)),
        // Named and described by the route template alone: the URL's query may hold a code and a state.
        Effect.withSpan(`${method} ${route}`, {
          kind: "server",
          captureStackTrace: false,
          ...(Option.isSome(parent) ? { parent: parent.value } : { root: true }),
          attributes: { "http.request.method": method, "http.route": route }
        }),
        Effect.onExit((exit) =>
          Effect.gen(function*() {
            const end = yield* Effect.clockWith((c) => c.currentTimeNanos)
            const seconds = Duration.toSeconds(Duration.nanos(end - start))
            const status = Exit.isSuccess(exit) ? exit.value.status : 500
            yield* Metric.increment(counters({ method, route, status: String(status) }))
            yield* Metric.update(timers({ method, route }), seconds)
            if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
              yield* Effect.logError("request failed", exit.cause).pipe(
                Effect.annotateLogs({ method, route, status, duration_ms: Math.round(seconds * 1000) })
              )
            }
          })
        )
      )
    })
}

const problem = (status: number, tag: string, message: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson({ _tag: tag, message }, { status, headers })

const unreadable = (message: string) =>
  HttpServerResponse.unsafeJson({ _tag: "BadRequest", field: "body", message }, { status: 400 })

// The unread rest of the body is not worth reading: the connection closes after the answer.
const tooLarge = () => problem(413, "PayloadTooLarge", `Request bodies are limited to ${MAX_BODY_BYTES} bytes`, { connection: "close" })

const JSON_MEDIA_TYPE = /^application\/json\s*(;|$)/i

/** The body; "too-large" once it passes `max` bytes (the rest is then left to drain, unread). */
const readBody = (source: IncomingMessage, max: number) =>
  Effect.async<Either.Either<string, "too-large" | "unreadable">>((resume) => {
    const chunks: Array<Buffer> = []
    let bytes = 0
    const finish = (result: Either.Either<string, "too-large" | "unreadable">) => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
      resume(Effect.succeed(result))
    }
    const onData = (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes <= max) chunks.push(chunk)
      else finish(Either.left("too-large"))
    }
    const onEnd = () => finish(Either.right(Buffer.concat(chunks).toString("utf8")))
    // Also how a body cut off ends: by the client, or by HTTP_REQUEST_TIMEOUT (Node has answered 408).
    const onError = () => finish(Either.left("unreadable"))
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("error", onError)
    return Effect.sync(() => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
    })
  })

/** The request with its body already read: an empty body reads as the JSON object {}. */
const withBody = (request: HttpServerRequest.HttpServerRequest, text: string): HttpServerRequest.HttpServerRequest => {
  const json = text.trim() === ""
    ? Effect.succeed({})
    : Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: (cause) => new HttpServerError.RequestError({ request, reason: "Decode", cause })
    })
  const arrayBuffer = Effect.sync(() => new TextEncoder().encode(text).buffer)
  return new Proxy(request, {
    get: (target, property) =>
      property === "text"
        ? Effect.succeed(text)
        : property === "json"
        ? json
        : property === "arrayBuffer"
        ? arrayBuffer
        : Reflect.get(target, property, target)
  })
}

/**
 * Bodies are JSON (415 for any other content type, before anything parses them) of at most
 * 64 KiB (413, whether Content-Length says so or a chunked body runs past it). The body is
 * read here, without the framework's limit, which drops the connection instead of answering.
 */
export const bodyLimit = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (!HttpMethod.hasBody(request.method)) return yield* app
    const contentType = request.headers["content-type"]
    if (contentType !== undefined && !JSON_MEDIA_TYPE.test(contentType.trim())) {
      return problem(415, "UnsupportedMediaType", "Request bodies must be JSON: send Content-Type: application/json")
    }
    if (Number(request.headers["content-length"] ?? "0") > MAX_BODY_BYTES) return tooLarge()
    const body = yield* readBody(NodeHttpServerRequest.toIncomingMessage(request), MAX_BODY_BYTES)
    if (Either.isLeft(body)) return body.left === "too-large" ? tooLarge() : unreadable("The request body could not be read")
    return yield* Effect.provideService(app, HttpServerRequest.HttpServerRequest, withBody(request, body.right))
  })

/** Every answer of the OAuth callback, whatever made it, is neither cached nor referred from. */
export const callbackHeaders = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    request.url.startsWith("/oauth/") ? Effect.map(app, HttpServerResponse.setHeaders(callbackSecurityHeaders)) : app)

const MAX_ECHO = 40

const shorten = (text: string) => (text.length > MAX_ECHO ? `${text.slice(0, MAX_ECHO)}…` : text)

/** Every quoted value in a message cut to MAX_ECHO characters. */
const clip = (text: string) => text.replace(/"(?:[^"\\]|\\.)*"/g, (quoted) => `"${shorten(quoted.slice(1, -1))}"`)

const GENERATED = /^Expected (.*), actual (.*)$/s

/**
 * A decode failure as {_tag: "BadRequest", field, message}: the first field at fault, in a
 * short message, with at most MAX_ECHO characters of what the caller sent (never the schema).
 */
export const badRequestBody = (error: HttpApiDecodeError) => {
  const first = error.issues[0]
  if (first === undefined || first.path.length === 0) {
    return { _tag: "BadRequest", field: "body", message: "The body must be a JSON object" }
  }
  const field = first.path.map(String).join(".")
  if (first._tag === "Missing") return { _tag: "BadRequest", field, message: `${field} is required` }
  // A union reports one issue per member: "Expected "a", actual x", "Expected "b", actual x".
  const generated = error.issues
    .filter((issue) => issue.path.map(String).join(".") === field)
    .map((issue) => GENERATED.exec(issue.message))
  // An optional field also reports "Expected undefined": true, and no help.
  const expected = generated.map((m) => m?.[1] ?? "").filter((e) => e !== "undefined")
  const message = generated.every((m) => m !== null)
    ? `${field} must be ${expected.join(" or ").slice(0, 100)}; got ${shorten(clip(generated[0]?.[2] ?? ""))}`
    : clip(first.message.split("\n")[0] ?? "").slice(0, 160)
  return { _tag: "BadRequest", field, message }
}

const encodeRetryable = Schema.encodeUnknown(Schema.Union(CircuitOpen, RateLimited, DatabaseUnavailable))

/**
 * When to ask again after DatabaseUnavailable: about one statement timeout (DB_STATEMENT_TIMEOUT's
 * default), the time a stalled database is given before a request is answered.
 */
export const DATABASE_RETRY_AFTER_SECONDS = 5

const retryAfterSeconds = (error: CircuitOpen | RateLimited | DatabaseUnavailable) =>
  error._tag === "DatabaseUnavailable"
    ? DATABASE_RETRY_AFTER_SECONDS
    : error.retryAfterMs === undefined
    ? undefined
    : Math.max(0, Math.ceil(error.retryAfterMs / 1000))

/** A 503 that says when to come back: its JSON body, and Retry-After in whole seconds, rounded up. */
export const retryLaterAnswer = (error: CircuitOpen | RateLimited | DatabaseUnavailable) =>
  Effect.map(Effect.orDie(encodeRetryable(error)), (body) => {
    const seconds = retryAfterSeconds(error)
    return { body, headers: seconds === undefined ? {} : { "retry-after": String(seconds) } }
  })

const retryLater = (error: CircuitOpen | RateLimited | DatabaseUnavailable) =>
  Effect.map(retryLaterAnswer(error), ({ body, headers }) => HttpServerResponse.unsafeJson(body, { status: 503, headers }))

/**
 * What the framework would answer with an empty body or its schema dump, answered with a
 * typed one: an unreadable body or a decode failure (400), an unknown route (404), a 503
 * that should carry Retry-After (an open circuit, a rate limit, an unavailable database).
 * Other declared errors pass through; a defect is a bug: logged, and answered 500 without
 * its details.
 */
export const errorResponses = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  app.pipe(
    Effect.catchAllCause((cause) => {
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
      const declared = Option.getOrUndefined(Cause.failureOption(cause))
      if (declared instanceof HttpApiDecodeError) return Effect.succeed(HttpServerResponse.unsafeJson(badRequestBody(declared), { status: 400 }))
      if (declared instanceof CircuitOpen || declared instanceof RateLimited || declared instanceof DatabaseUnavailable) return retryLater(declared)
      // The framework may carry these as defects beside the response it prepared.
      const failure = Option.getOrUndefined(Cause.find(cause, (reason) => {
        const error = reason._tag === "Fail" ? reason.error : reason._tag === "Die" ? reason.defect : undefined
        return error instanceof HttpServerError.RequestError || error instanceof HttpServerError.RouteNotFound
          ? Option.some(error)
          : Option.none()
      }))
      if (failure instanceof HttpServerError.RequestError) {
        return Effect.succeed(unreadable("The request body could not be read: send valid JSON"))
      }
      if (failure instanceof HttpServerError.RouteNotFound) return Effect.succeed(problem(404, "NotFound", "No such route"))
      // Declared errors are encoded by the API with their status.
      if (declared !== undefined) return Effect.failCause(cause)
      return Effect.logError("unexpected failure while serving a request", cause).pipe(
        Effect.as(problem(500, "InternalError", "Internal error"))
      )
    })
  )
