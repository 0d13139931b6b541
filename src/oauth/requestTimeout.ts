import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientError from "@effect/platform/HttpClientError"
import { Cause, Duration, Effect } from "effect"

/**
 * The time a request to a platform may take, answer read included, kept beside the request
 * (as @effect/platform keeps a scoped request's controller): setting it costs nothing on
 * the fiber, which matters on the token monitor's path. The HttpClient the platforms are
 * called through enforces it: the service's own (undiciClient) with a timer of the
 * request's own, any other with `enforceRequestTimeout`. A request made from this one
 * (another URL, another header) does not inherit it.
 */
const timeouts = new WeakMap<HttpClientRequest.HttpClientRequest, Duration.Duration>()

/** The request, to be sent within `timeout`. */
export const withRequestTimeout = (request: HttpClientRequest.HttpClientRequest, timeout: Duration.DurationInput) => {
  timeouts.set(request, Duration.decode(timeout))
  return request
}

export const requestTimeoutOf = (request: HttpClientRequest.HttpClientRequest): Duration.Duration | undefined => timeouts.get(request)

/** What a client fails with when the request timeout runs out. */
export const timedOut = (request: HttpClientRequest.HttpClientRequest) =>
  new HttpClientError.RequestError({ request, reason: "Transport", description: "timed out", cause: new Cause.TimeoutException() })

export const isTimeout = (error: unknown) => error instanceof HttpClientError.RequestError && Cause.isTimeoutException(error.cause)

/**
 * The request timeout for a client that has no timer of its own, on the fiber's Clock (so a
 * TestClock drives it). It races the request against a sleep: two fibers per request.
 */
export const enforceRequestTimeout = <A, E, R>(request: HttpClientRequest.HttpClientRequest, send: Effect.Effect<A, E, R>) => {
  const timeout = timeouts.get(request)
  return timeout === undefined ? send : Effect.timeoutFail(send, { duration: timeout, onTimeout: () => timedOut(request) })
}
