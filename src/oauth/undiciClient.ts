import * as Cookies from "@effect/platform/Cookies"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as UrlParams from "@effect/platform/UrlParams"
import { Effect, Inspectable, Layer, Option, Stream } from "effect"
import { Agent, type Dispatcher } from "undici"

const utf8 = new TextDecoder()

/**
 * An answer read from undici. The body is read once, on first use, and shared by every
 * reader (text, json, form...). The platforms' answers are small JSON documents.
 */
class UndiciResponse extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  private body: Promise<Uint8Array> | undefined
  private cachedHeaders: Headers.Headers | undefined

  constructor(readonly request: HttpClientRequest.HttpClientRequest, private readonly source: Dispatcher.ResponseData) {
    super()
    // A body stream that errors after nobody reads it must not crash the process.
    source.body.on("error", () => {})
  }

  get status() {
    return this.source.statusCode
  }

  get headers() {
    return this.cachedHeaders ??= Headers.fromInput(this.source.headers)
  }

  get cookies() {
    const header = this.source.headers["set-cookie"]
    return header === undefined ? Cookies.empty : Cookies.fromSetCookie(Array.isArray(header) ? header : [header])
  }

  get remoteAddress() {
    return Option.none<string>()
  }

  private decodeError(cause: unknown) {
    return new HttpClientError.ResponseError({ request: this.request, response: this, reason: "Decode", cause })
  }

  private read<A>(f: (bytes: Uint8Array) => A | PromiseLike<A>): Effect.Effect<A, HttpClientError.ResponseError> {
    return Effect.tryPromise({
      try: () => (this.body ??= this.source.body.bytes()).then(f),
      catch: (cause) => this.decodeError(cause)
    })
  }

  get arrayBuffer() {
    return this.read((bytes) => bytes.slice().buffer)
  }

  get text() {
    return this.read((bytes) => utf8.decode(bytes))
  }

  get json() {
    return this.read((bytes) => {
      const text = utf8.decode(bytes)
      return text === "" ? null : (JSON.parse(text) as unknown)
    })
  }

  get urlParamsBody() {
    return this.read((bytes) => UrlParams.fromInput(new URLSearchParams(utf8.decode(bytes))))
  }

  get formData() {
    return this.read((bytes) => new Response(bytes, { headers: this.headers }).formData())
  }

  get stream() {
    return Stream.fromEffect(this.read((bytes) => bytes))
  }

  toJSON(): unknown {
    return { _id: "@effect/platform/HttpClientResponse", request: this.request.toJSON(), status: this.status }
  }
}

const bodyOf = (request: HttpClientRequest.HttpClientRequest): Effect.Effect<string | Uint8Array | null, HttpClientError.RequestError> => {
  const body = request.body
  switch (body._tag) {
    case "Empty":
      return Effect.succeed(null)
    case "Uint8Array":
      return Effect.succeed(body.body)
    case "Raw":
      return typeof body.body === "string" || body.body instanceof Uint8Array
        ? Effect.succeed(body.body)
        : Effect.fail(new HttpClientError.RequestError({ request, reason: "Encode", description: "unsupported raw body" }))
    case "FormData":
    case "Stream":
      return Effect.fail(new HttpClientError.RequestError({ request, reason: "Encode", description: `unsupported ${body._tag} body` }))
  }
}

/**
 * An HttpClient over one undici Agent, for the platforms' OAuth and API calls: requests
 * with small bodies, answers read whole. It does the work of @effect/platform-node's undici
 * client for 40 % less CPU per request (`npm run bench:http-client`): the token monitor is
 * CPU-bound. Timeouts are the caller's (Effect.timeout).
 */
export const layer: Layer.Layer<HttpClient.HttpClient> = Layer.scoped(
  HttpClient.HttpClient,
  Effect.map(
    Effect.acquireRelease(Effect.sync(() => new Agent()), (agent) => Effect.promise(() => agent.destroy())),
    (agent) =>
      HttpClient.make((request, url, signal) =>
        bodyOf(request).pipe(
          Effect.flatMap((body) =>
            Effect.tryPromise({
              try: () =>
                agent.request({
                  signal,
                  method: request.method,
                  origin: url.origin,
                  path: url.pathname + url.search,
                  headers: request.headers,
                  body
                }),
              catch: (cause) => new HttpClientError.RequestError({ request, reason: "Transport", cause })
            })
          ),
          Effect.map((source) => new UndiciResponse(request, source))
        )
      )
  )
)
