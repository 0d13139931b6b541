import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Cause, Context, type Duration, Effect, Layer } from "effect"

/** What a platform's client fails with when a request's timeout runs out. */
export const timedOut = (request: HttpClientRequest.HttpClientRequest) =>
  new HttpClientError.RequestError({ request, reason: "Transport", description: "timed out", cause: new Cause.TimeoutException() })

export const isTimeout = (error: unknown) => error instanceof HttpClientError.RequestError && Cause.isTimeoutException(error.cause)

/**
 * `client` with each request raced against a sleep of `timeout` on the fiber's Clock (two
 * fibers per request), so a TestClock drives it. `client` must read each answer whole.
 */
export const withClockTimeout = (client: HttpClient.HttpClient, timeout: Duration.Duration): HttpClient.HttpClient =>
  HttpClient.transform(client, (send, request) => Effect.timeoutFail(send, { duration: timeout, onTimeout: () => timedOut(request) }))

/**
 * The HTTP clients the platforms are called through: one per platform, made with its request
 * timeout (the time a request may take, its answer read whole, so that the engine reads an
 * answer already received). The service's own is `UndiciClient.layer`, whose requests are
 * timed by a timer of their own; tests that drive time with TestClock provide `onClock`.
 */
export class PlatformHttp extends Context.Tag("Integrations/PlatformHttp")<PlatformHttp, {
  readonly client: (timeout: Duration.Duration) => HttpClient.HttpClient
}>() {
  /**
   * Clients over the HttpClient in context, each timeout on the fiber's Clock
   * (withClockTimeout): for tests that drive time with TestClock.
   */
  static readonly onClock: Layer.Layer<PlatformHttp, never, HttpClient.HttpClient> = Layer.effect(
    PlatformHttp,
    Effect.map(HttpClient.HttpClient, (base) => ({ client: (timeout) => withClockTimeout(base, timeout) }))
  )
}
