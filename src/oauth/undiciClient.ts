import type { IncomingHttpHeaders } from "node:http"
import * as Cookies from "@effect/platform/Cookies"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as UrlParams from "@effect/platform/UrlParams"
import { Duration, Effect, Either, Inspectable, Layer, Option, Stream } from "effect"
import { Agent, type Dispatcher } from "undici"
import { PlatformHttp, timedOut } from "./PlatformHttp.js"

const utf8 = new TextDecoder()

/** A platform's answers are small JSON documents: a larger body is not read, rather than held in memory. */
const MAX_ANSWER_BYTES = 1024 * 1024

/** An answer read whole: the platforms' answers are small JSON documents. */
class UndiciResponse extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  private cachedHeaders: Headers.Headers | undefined

  constructor(
    readonly request: HttpClientRequest.HttpClientRequest,
    readonly status: number,
    private readonly rawHeaders: IncomingHttpHeaders,
    /** Undefined: the body was larger than MAX_ANSWER_BYTES and was not read. */
    private readonly bytes: Uint8Array | undefined
  ) {
    super()
  }

  get headers() {
    return this.cachedHeaders ??= Headers.fromInput(this.rawHeaders)
  }

  get cookies() {
    const header = this.rawHeaders["set-cookie"]
    return header === undefined ? Cookies.empty : Cookies.fromSetCookie(header)
  }

  get remoteAddress() {
    return Option.none<string>()
  }

  private decodeError(cause: unknown) {
    return new HttpClientError.ResponseError({ request: this.request, response: this, reason: "Decode", cause })
  }

  private bodyRead(): Uint8Array {
    if (this.bytes === undefined) throw new Error(`the body is over ${MAX_ANSWER_BYTES} bytes`)
    return this.bytes
  }

  private decode<A>(f: (bytes: Uint8Array) => A): Effect.Effect<A, HttpClientError.ResponseError> {
    return Effect.try({ try: () => f(this.bodyRead()), catch: (cause) => this.decodeError(cause) })
  }

  get arrayBuffer() {
    return this.decode((bytes) => bytes.slice().buffer)
  }

  get text() {
    return this.decode((bytes) => utf8.decode(bytes))
  }

  get json() {
    return this.decode((bytes) => bytes.length === 0 ? null : (JSON.parse(utf8.decode(bytes)) as unknown))
  }

  get urlParamsBody() {
    return this.decode((bytes) => UrlParams.fromInput(new URLSearchParams(utf8.decode(bytes))))
  }

  get formData(): Effect.Effect<FormData, HttpClientError.ResponseError> {
    return Effect.tryPromise({
      try: () => new Response(this.bodyRead(), { headers: this.headers }).formData(),
      catch: (cause) => this.decodeError(cause)
    })
  }

  get stream() {
    return Stream.fromEffect(this.decode((bytes) => bytes))
  }

  toJSON(): unknown {
    return { _id: "@effect/platform/HttpClientResponse", request: this.request.toJSON(), status: this.status }
  }
}

const bodyOf = (request: HttpClientRequest.HttpClientRequest): Either.Either<string | Uint8Array | null, HttpClientError.RequestError> => {
  const body = request.body
  switch (body._tag) {
    case "Empty":
      return Either.right(null)
    case "Uint8Array":
      return Either.right(body.body)
    case "Raw":
      return typeof body.body === "string" || body.body instanceof Uint8Array
        ? Either.right(body.body)
        : Either.left(new HttpClientError.RequestError({ request, reason: "Encode", description: "unsupported raw body" }))
    case "FormData":
    case "Stream":
      return Either.left(new HttpClientError.RequestError({ request, reason: "Encode", description: `unsupported ${body._tag} body` }))
  }
}

interface Target {
  readonly origin: string
  readonly path: string
}

/** A platform is called at a handful of URLs: its client parses each once. */
const MAX_TARGETS = 64

type TargetOf = (request: HttpClientRequest.HttpClientRequest) => Either.Either<Target, HttpClientError.RequestError>

const targetCache = (): TargetOf => {
  const targets = new Map<string, Target>()
  return (request) => {
    const plain = request.urlParams.length === 0 && Option.isNone(request.hash)
    const known = plain ? targets.get(request.url) : undefined
    if (known !== undefined) return Either.right(known)
    const url = UrlParams.makeUrl(request.url, request.urlParams, request.hash)
    if (Either.isLeft(url)) return Either.left(new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause: url.left }))
    const target = { origin: url.right.origin, path: url.right.pathname + url.right.search }
    if (plain) {
      if (targets.size >= MAX_TARGETS) targets.clear()
      targets.set(request.url, target)
    }
    return Either.right(target)
  }
}

const aborted = new Error("request interrupted")

/**
 * One request on undici's dispatcher, its answer gathered whole. `timeoutMs`, when given, is
 * a timer of the request's own: no fiber waits beside it. Interrupting the effect aborts the
 * request, on the wire or before it is sent.
 */
const dispatch = (
  agent: Agent,
  targetOf: TargetOf,
  request: HttpClientRequest.HttpClientRequest,
  timeoutMs: number | undefined
) =>
  Effect.async<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError>((resume) => {
    const target = targetOf(request)
    if (Either.isLeft(target)) return resume(Effect.fail(target.left))
    const body = bodyOf(request)
    if (Either.isLeft(body)) return resume(Effect.fail(body.left))

    let settled = false
    let controller: Dispatcher.DispatchController | undefined
    let timer: ReturnType<typeof setTimeout> | undefined
    let status = 0
    let headers: IncomingHttpHeaders = {}
    const chunks: Array<Buffer> = []
    let received = 0
    const settle = (outcome: Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError>) => {
      if (settled) return
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      resume(outcome)
    }
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        // Given up on while it waited for a connection: it is not sent.
        if (settled) c.abort(aborted)
        else controller = c
      },
      onResponseStart(_, statusCode, responseHeaders) {
        status = statusCode
        headers = responseHeaders
      },
      onResponseData(c, chunk) {
        received += chunk.length
        if (received <= MAX_ANSWER_BYTES) return void chunks.push(chunk)
        // The answer is given, with a body that cannot be read; the rest is not received.
        settle(Effect.succeed(new UndiciResponse(request, status, headers, undefined)))
        c.abort(aborted)
      },
      onResponseEnd() {
        const bytes = chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks)
        settle(Effect.succeed(new UndiciResponse(request, status, headers, bytes)))
      },
      onResponseError(_, cause) {
        settle(Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause })))
      }
    }
    agent.dispatch({ origin: target.right.origin, path: target.right.path, method: request.method, headers: request.headers, body: body.right }, handler)
    if (timeoutMs !== undefined && !settled) {
      timer = setTimeout(() => {
        settle(Effect.fail(timedOut(request)))
        controller?.abort(aborted)
      }, timeoutMs)
    }
    return Effect.sync(() => {
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      controller?.abort(aborted)
    })
  })

/** A timer's delay for a timeout; none for no timeout or an infinite one. */
const timerMillis = (timeout: Duration.Duration | undefined) => {
  if (timeout === undefined) return undefined
  const ms = Duration.toMillis(timeout)
  return Number.isFinite(ms) ? Math.max(0, ms) : undefined
}

/**
 * An HttpClient over an undici Agent, for the platforms' OAuth and API calls: small bodies,
 * answers read whole, each request within `timeout` (when given) by a timer of its own,
 * whatever Clock the fiber runs on. It skips what the generic client does for tracing and
 * streaming (no span, no AbortController, no finalization registry per request): the token
 * monitor is CPU-bound on these calls (`npm run bench:http-client`).
 */
export const make = (agent: Agent, timeout?: Duration.Duration): HttpClient.HttpClient => {
  const timeoutMs = timerMillis(timeout)
  const targetOf = targetCache()
  return HttpClient.makeWith<never, never, HttpClientError.HttpClientError, never>(
    (prepared) => Effect.flatMap(prepared, (request) => dispatch(agent, targetOf, request, timeoutMs)),
    Effect.succeed
  )
}

/** One Agent (one connection pool) for every client made in the scope. */
const scopedAgent = Effect.acquireRelease(Effect.sync(() => new Agent()), (agent) => Effect.promise(() => agent.destroy()))

/** The service's platform clients: one per platform, over one Agent, each with its timeout. */
export const layer: Layer.Layer<PlatformHttp> = Layer.scoped(
  PlatformHttp,
  Effect.map(scopedAgent, (agent) => ({ client: (timeout) => make(agent, timeout) }))
)

/** A client without a timeout of its own, over an Agent of its scope: for `PlatformHttp.onClock`. */
export const layerWithoutTimeout: Layer.Layer<HttpClient.HttpClient> = Layer.scoped(
  HttpClient.HttpClient,
  Effect.map(scopedAgent, (agent) => make(agent))
)
