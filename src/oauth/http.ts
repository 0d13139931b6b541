import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Clock, Context, Effect, Option, Schema } from "effect"
import {
  type CircuitOpen,
  InvalidClient,
  InvalidGrant,
  ProviderResponseInvalid,
  ProviderUnavailable,
  RateLimited
} from "../domain/errors.js"
import { isTimeout } from "./PlatformHttp.js"

/** Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3), in milliseconds from `nowMs`. */
export const parseRetryAfter = (value: string | undefined, nowMs: number): number | undefined => {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs)
}

/**
 * Wraps every HTTP request of an operation, answer read included. The resilient provider
 * puts its circuit breaker here, so that each request is one breaker observation and work
 * done without the network (building a URL) is not.
 */
export class RequestGuard extends Context.Tag("Integrations/RequestGuard")<RequestGuard, {
  readonly observe: <A, E, R>(request: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CircuitOpen | ProviderUnavailable, R>
}>() {}

/**
 * Sends a request with the platform's client and reads its answer with `read`, through the
 * RequestGuard when one is provided. Transport failures, timeouts, 5xx and 429 become the
 * transient errors; `read` gets every other response. The client reads the whole answer
 * within the platform's timeout (see PlatformHttp), so `read` works on an answer received.
 */
export const call = <A, E, R>(
  platform: string,
  client: HttpClient.HttpClient,
  request: HttpClientRequest.HttpClientRequest,
  read: (response: HttpClientResponse.HttpClientResponse) => Effect.Effect<A, E, R>
) => {
  const attempt = Effect.flatMap(send(platform, client, request), read)
  return Effect.flatMap(Effect.serviceOption(RequestGuard), Option.match({ onNone: () => attempt, onSome: (guard) => guard.observe(attempt) }))
}

const send = (
  platform: string,
  client: HttpClient.HttpClient,
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<HttpClientResponse.HttpClientResponse, ProviderUnavailable | RateLimited> =>
  client.execute(request).pipe(
    Effect.catchAll((error) => Effect.fail(new ProviderUnavailable({ platform, reason: isTimeout(error) ? "timeout" : "network" }))),
    // On the attempt's span (see registry/resilient.ts): the status, never the URL (a revocation's may hold the token).
    Effect.tap((response) => Effect.annotateCurrentSpan("http.response.status_code", response.status)),
    Effect.flatMap((response): Effect.Effect<HttpClientResponse.HttpClientResponse, ProviderUnavailable | RateLimited> => {
      if (response.status === 429) {
        return Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const retryAfterMs = parseRetryAfter(response.headers["retry-after"], now)
          return Effect.fail(new RateLimited(retryAfterMs === undefined ? { platform } : { platform, retryAfterMs }))
        })
      }
      if (response.status >= 500) return Effect.fail(new ProviderUnavailable({ platform, reason: "status", status: response.status }))
      return Effect.succeed(response)
    })
  )

/** The body as JSON; anything else is ProviderResponseInvalid. */
export const readJson = (platform: string, response: HttpClientResponse.HttpClientResponse) =>
  response.json.pipe(
    Effect.mapError(() => new ProviderResponseInvalid({ platform, detail: `HTTP ${response.status} with a body that is not JSON` }))
  )

const OAuthErrorBody = Schema.Struct({
  error: Schema.String,
  error_description: Schema.optional(Schema.String)
})

const ERROR_CODE = /^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}$/

/**
 * Text a platform wrote may be shown to an operator, but first anything that could be a
 * token or a code (long runs of token characters) is cut out, and it is shortened.
 */
export const sanitizeDescription = (text: string): string =>
  text.replace(/[A-Za-z0-9._~+/=-]{24,}/g, "[redacted]").replace(/[\u0000-\u001f]/g, " ").slice(0, 200)

const decodeOAuthError = Schema.decodeUnknownOption(OAuthErrorBody)

/**
 * The RFC 6749 §5.2 error code and description a JSON body carries, if it carries one. A body
 * without `error` (every token the monitor receives) is not decoded at all.
 */
export const oauthErrorIn = (body: unknown) =>
  typeof body === "object" && body !== null && "error" in body
    ? Option.filter(decodeOAuthError(body), (decoded) => ERROR_CODE.test(decoded.error))
    : Option.none()

/** The RFC 6749 §5.2 error code and description of a 4xx answer. */
export const readOAuthError = (platform: string, response: HttpClientResponse.HttpClientResponse) =>
  Effect.flatMap(readJson(platform, response), (body) =>
    Option.match(oauthErrorIn(body), {
      onNone: () => Effect.fail(new ProviderResponseInvalid({ platform, detail: `HTTP ${response.status} without an OAuth error code` })),
      onSome: Effect.succeed
    }))

/** The typed error an RFC 6749 §5.2 error code stands for. */
export const errorFromCode = (
  platform: string,
  status: number,
  body: { readonly error: string; readonly error_description?: string | undefined }
): InvalidGrant | InvalidClient | ProviderResponseInvalid => {
  switch (body.error) {
    case "invalid_grant":
      return new InvalidGrant(
        body.error_description === undefined ? { platform } : { platform, description: sanitizeDescription(body.error_description) }
      )
    case "invalid_client":
    case "unauthorized_client":
      return new InvalidClient({ platform, error: body.error })
    default:
      return new ProviderResponseInvalid({ platform, detail: `HTTP ${status} error ${body.error}` })
  }
}

/** A 4xx from a token or revocation endpoint, read as the RFC 6749 §5.2 error it should carry. */
export const oauthError = (platform: string, response: HttpClientResponse.HttpClientResponse) =>
  Effect.flatMap(readOAuthError(platform, response), (body) => Effect.fail(errorFromCode(platform, response.status, body)))
