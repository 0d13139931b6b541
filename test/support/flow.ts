import { request as httpRequest } from "node:http"
import { Effect, type ParseResult, Schema } from "effect"
import { AuthUrlPayloadJson } from "../../src/http/schemas.js"
import type { Instance } from "./app.js"

/** A JSON object answer, fields unchecked: enough to assert on `_tag`, `message` and the like. */
export type JsonObject = Readonly<Record<string, unknown>>

const AnyObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/**
 * The response's JSON, decoded with `schema` (one of the API's response schemas, so the test
 * reads typed fields), or as a plain object without one. Anything else fails the test.
 */
export function json(response: Response): Effect.Effect<JsonObject>
export function json<A, I>(response: Response, schema: Schema.Schema<A, I>): Effect.Effect<A>
export function json<A, I>(response: Response, schema?: Schema.Schema<A, I>): Effect.Effect<A | JsonObject> {
  const decode: (body: unknown) => Effect.Effect<A | JsonObject, ParseResult.ParseError> = schema === undefined
    ? Schema.decodeUnknown(AnyObject)
    : Schema.decodeUnknown(schema)
  return Effect.promise((): Promise<unknown> => response.json()).pipe(Effect.flatMap(decode), Effect.orDie)
}

export const call = (instance: Instance, path: string, init?: Parameters<Instance["request"]>[1]) =>
  Effect.promise(() => instance.request(path, init))

export const post = (instance: Instance, path: string, body: unknown = {}, key?: string | null) =>
  call(instance, path, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" }, ...(key === undefined ? {} : { key }) })

/** The one-time confirmation code a callback's answer carries (a redirect's query, or a popup page's message), if any. */
export const confirmationOf = (callback: Response, body?: string): string | undefined => {
  const location = callback.headers.get("location")
  if (location !== null) return new URL(location).searchParams.get("confirmation") ?? undefined
  return body === undefined ? undefined : /"confirmation":"([A-Za-z0-9_-]+)"/.exec(body)?.[1]
}

/** What the application's back end does where the browser lands: confirm the grant for the user logged in there. */
export const confirm = (instance: Instance, userId: string, platform: string, confirmation: string, key?: string | null) =>
  post(instance, `/v1/users/${userId}/connections/${platform}/confirm`, { confirmation }, key)

/**
 * The browser's part of a connection: POST authorize, follow auth_url to the fake
 * platform (which consents at once), and bring its redirect back to the service's callback;
 * then, when the callback holds the grant for confirmation, the application's confirmation
 * for the same user (`confirmed`).
 */
export const connect = (instance: Instance, userId: string, platform: string, body: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const authorize = yield* post(instance, `/v1/users/${userId}/connections/${platform}/authorize`, body)
    if (authorize.status !== 200) {
      return yield* Effect.dieMessage(`authorize answered ${authorize.status}: ${yield* Effect.promise(() => authorize.text())}`)
    }
    const payload = yield* json(authorize, AuthUrlPayloadJson)
    const consent = yield* Effect.promise(() => fetch(payload.auth_url, { redirect: "manual" }))
    const location = consent.headers.get("location")
    if (consent.status !== 302 || location === null) {
      return yield* Effect.dieMessage(`the platform answered ${consent.status}: ${yield* Effect.promise(() => consent.text())}`)
    }
    const back = new URL(location)
    const callback = yield* call(instance, `/oauth/${platform}/callback${back.search}`, { key: null })
    const page = callback.headers.get("content-type")?.includes("text/html") === true ? yield* Effect.promise(() => callback.clone().text()) : undefined
    const code = confirmationOf(callback, page)
    const confirmed = code === undefined ? undefined : yield* confirm(instance, userId, platform, code)
    if (confirmed !== undefined && confirmed.status !== 200) {
      return yield* Effect.dieMessage(`confirm answered ${confirmed.status}: ${yield* Effect.promise(() => confirmed.text())}`)
    }
    return { payload, redirect: back, callback, confirmed }
  })

export interface RawResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly body: string
}

/**
 * One request with node:http, as written: header values are not trimmed (fetch trims them),
 * and `chunks` are sent with Transfer-Encoding: chunked unless a Content-Length is given.
 * A dropped connection fails the test.
 */
export const rawRequest = (instance: Instance, options: {
  readonly method?: string
  readonly path: string
  readonly headers?: Readonly<Record<string, string>>
  readonly chunks?: ReadonlyArray<string | Buffer>
}) =>
  Effect.async<RawResponse>((resume) => {
    const url = new URL(instance.baseUrl)
    const request = httpRequest({
      host: url.hostname,
      port: url.port,
      method: options.method ?? "GET",
      path: options.path,
      headers: options.headers ?? {}
    }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () =>
        resume(Effect.succeed({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString("utf8") })))
    })
    request.on("error", (error) => resume(Effect.dieMessage(`the request failed: ${error.message}`)))
    for (const chunk of options.chunks ?? []) request.write(chunk)
    request.end()
  })
