import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Either, Fiber, Layer, Schedule, TestClock } from "effect"
import { isTimeout, PlatformHttp } from "../../src/oauth/PlatformHttp.js"
import * as UndiciClient from "../../src/oauth/undiciClient.js"

interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage["headers"]
  readonly body: string
}

/** A local server answering with `reply`; what it received is kept in `seen`, closed connections in `aborted`. */
const serve = (reply: (request: Seen, res: ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: Server; readonly url: string; readonly seen: Array<Seen>; readonly aborted: Array<string> }>((resume) => {
      const seen: Array<Seen> = []
      const aborted: Array<string> = []
      const server = createServer((req, res) => {
        let body = ""
        req.on("data", (c: Buffer) => { body += c.toString() })
        req.on("end", () => {
          const request = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body }
          seen.push(request)
          res.on("close", () => { if (!res.writableFinished) aborted.push(request.url) })
          reply(request, res)
        })
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, aborted })))
    }),
    ({ server }) => Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
  )

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string | Array<string>> = {}) => {
  res.writeHead(status, { "content-type": "application/json", ...headers })
  res.end(JSON.stringify(body))
}

const liveClock = Clock.make()

/** Whether the server sees a connection closed before it answered, within 2 s. */
const closedSoon = (aborted: ReadonlyArray<string>) =>
  Effect.repeat(Effect.sync(() => aborted.length), { until: (n) => n > 0, schedule: Schedule.spaced(Duration.millis(10)) }).pipe(
    Effect.timeout(Duration.seconds(2)),
    Effect.either,
    Effect.map(Either.isRight)
  )

const execute = (request: HttpClientRequest.HttpClientRequest) =>
  Effect.flatMap(HttpClient.HttpClient, (client) => client.execute(request))

/** A platform's client as the registry makes it, with its request timeout. */
const platformClient = (timeout: Duration.Duration = Duration.seconds(10)) =>
  Layer.effect(HttpClient.HttpClient, Effect.map(PlatformHttp, (http) => http.client(timeout))).pipe(Layer.provide(UndiciClient.layer))

const Client = platformClient()

describe("undici HttpClient", () => {
  it.scoped("sends a form POST with its headers and reads the JSON answer", () =>
    Effect.gen(function*() {
      const { url, seen } = yield* serve((_, res) => json(res, 200, { access_token: "at-1", expires_in: 3600 }))
      const response = yield* execute(
        HttpClientRequest.post(`${url}/oauth/token?x=1`).pipe(
          HttpClientRequest.acceptJson,
          HttpClientRequest.bodyUrlParams({ grant_type: "refresh_token", refresh_token: "rt 1" })
        )
      )
      expect(response.status).toBe(200)
      expect(response.headers["content-type"]).toBe("application/json")
      expect(yield* response.json).toEqual({ access_token: "at-1", expires_in: 3600 })
      // The body is read once and shared: a second reader gets the same answer.
      expect(yield* response.text).toBe('{"access_token":"at-1","expires_in":3600}')
      expect(seen).toHaveLength(1)
      expect(seen[0]).toMatchObject({ method: "POST", url: "/oauth/token?x=1", body: "grant_type=refresh_token&refresh_token=rt+1" })
      expect(seen[0]?.headers["content-type"]).toBe("application/x-www-form-urlencoded")
      expect(seen[0]?.headers["accept"]).toBe("application/json")
    }).pipe(Effect.provide(Client)))

  it.scoped("sends a JSON body and gives an error status as an answer, with its cookies", () =>
    Effect.gen(function*() {
      const { url, seen } = yield* serve((_, res) => json(res, 400, { error: "invalid_grant" }, { "set-cookie": ["a=1", "b=2"] }))
      const response = yield* execute(HttpClientRequest.post(`${url}/api`).pipe(HttpClientRequest.bodyUnsafeJson({ n: 1 })))
      expect(response.status).toBe(400)
      expect(yield* response.json).toEqual({ error: "invalid_grant" })
      expect(Object.keys(response.cookies.cookies).sort()).toEqual(["a", "b"])
      expect(seen[0]?.body).toBe('{"n":1}')
      expect(seen[0]?.headers["content-type"]).toBe("application/json")
    }).pipe(Effect.provide(Client)))

  it.scoped("a body that is not JSON is a ResponseError of reason Decode", () =>
    Effect.gen(function*() {
      const { url } = yield* serve((_, res) => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end('{"access_token": "abc"')
      })
      const response = yield* execute(HttpClientRequest.get(url))
      const error = yield* Effect.flip(response.json)
      expect(error).toMatchObject({ _tag: "ResponseError", reason: "Decode" })
      expect(yield* response.text).toBe('{"access_token": "abc"')
    }).pipe(Effect.provide(Client)))

  it.scoped("an empty body reads as null JSON and an empty text", () =>
    Effect.gen(function*() {
      const { url } = yield* serve((_, res) => {
        res.writeHead(204)
        res.end()
      })
      const response = yield* execute(HttpClientRequest.get(url))
      expect(response.status).toBe(204)
      expect(yield* response.json).toBeNull()
      expect(yield* response.text).toBe("")
    }).pipe(Effect.provide(Client)))

  it.scoped("a refused connection is a RequestError of reason Transport", () =>
    Effect.gen(function*() {
      const { url, server } = yield* serve((_, res) => res.end())
      yield* Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
      const error = yield* Effect.flip(execute(HttpClientRequest.get(url)))
      expect(error).toMatchObject({ _tag: "RequestError", reason: "Transport" })
    }).pipe(Effect.provide(Client)))

  it.live("interrupting a request in flight aborts it", () =>
    Effect.gen(function*() {
      // The server never answers.
      const { url, aborted } = yield* serve(() => {})
      const fiber = yield* Effect.fork(execute(HttpClientRequest.get(`${url}/hangs`)))
      yield* Effect.sleep(Duration.millis(100))
      yield* Fiber.interrupt(fiber)
      expect(yield* closedSoon(aborted)).toBe(true)
      expect(aborted).toEqual(["/hangs"])
    }).pipe(Effect.provide(Client), Effect.scoped))

  it.live("a request unanswered within its timeout fails as timed out, on its own timer, and is aborted on the wire", () =>
    Effect.gen(function*() {
      const { url, aborted } = yield* serve(() => {})
      const started = Date.now()
      const error = yield* Effect.flip(execute(HttpClientRequest.get(`${url}/slow`)))
      const took = Date.now() - started
      expect(isTimeout(error)).toBe(true)
      expect(took).toBeGreaterThanOrEqual(190)
      expect(took).toBeLessThan(2000)
      expect(yield* closedSoon(aborted)).toBe(true)
      expect(aborted).toEqual(["/slow"])
    }).pipe(Effect.provide(platformClient(Duration.millis(200))), Effect.scoped))

  it.live("an answer that comes within the timeout is given whole", () =>
    Effect.gen(function*() {
      const { url } = yield* serve((_, res) => setTimeout(() => json(res, 200, { ok: true }), 100))
      const response = yield* execute(HttpClientRequest.get(url))
      expect(yield* response.json).toEqual({ ok: true })
    }).pipe(Effect.provide(platformClient(Duration.millis(500))), Effect.scoped))

  it.live("each platform's client has its own timeout", () =>
    Effect.gen(function*() {
      const { url } = yield* serve((_, res) => setTimeout(() => json(res, 200, { ok: true }), 300))
      const http = yield* PlatformHttp
      const [quick, patient] = [http.client(Duration.millis(100)), http.client(Duration.seconds(5))]
      const [early, answered] = yield* Effect.all([Effect.flip(quick.execute(HttpClientRequest.get(url))), patient.execute(HttpClientRequest.get(url))], {
        concurrency: 2
      })
      expect(isTimeout(early)).toBe(true)
      expect(yield* answered.json).toEqual({ ok: true })
    }).pipe(Effect.provide(UndiciClient.layer), Effect.scoped))

  it.effect("under a TestClock the service's client still times out on its own timer, in real time", () =>
    Effect.gen(function*() {
      const { url, aborted } = yield* serve(() => {})
      const error = yield* Effect.flip(execute(HttpClientRequest.get(`${url}/slow`)))
      expect(isTimeout(error)).toBe(true)
      expect(yield* closedSoon(aborted).pipe(Effect.withClock(liveClock))).toBe(true)
    }).pipe(Effect.provide(platformClient(Duration.millis(200))), Effect.scoped))

  it.effect("PlatformHttp.onClock over it: the timeout runs on the TestClock", () =>
    Effect.gen(function*() {
      const { url } = yield* serve(() => {})
      const client = (yield* PlatformHttp).client(Duration.seconds(10))
      const fiber = yield* Effect.fork(client.execute(HttpClientRequest.get(url)))
      yield* Effect.sleep(Duration.millis(50)).pipe(Effect.withClock(liveClock))
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("10 seconds")
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(isTimeout(error)).toBe(true)
    }).pipe(Effect.provide(PlatformHttp.onClock.pipe(Layer.provide(UndiciClient.layerWithoutTimeout))), Effect.scoped))

  it.scoped("a body over 1 MiB is not read: the answer is given, and reading it fails with reason Decode", () =>
    Effect.gen(function*() {
      const { url } = yield* serve((_, res) => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(Buffer.alloc(2 * 1024 * 1024, 0x20))
      })
      const response = yield* execute(HttpClientRequest.get(url))
      expect(response.status).toBe(200)
      expect(yield* Effect.flip(response.json)).toMatchObject({ _tag: "ResponseError", reason: "Decode" })
      expect(yield* Effect.flip(response.text)).toMatchObject({ _tag: "ResponseError", reason: "Decode" })
    }).pipe(Effect.provide(Client)))
})
