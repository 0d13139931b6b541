import { connect as connectTcp } from "node:net"
import { describe, expect, layer } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { API_KEY, type Instance } from "../support/app.js"
import { Harness, HarnessLive } from "../support/harness.js"

const HEADERS_TIMEOUT = Duration.seconds(1)
const REQUEST_TIMEOUT = Duration.seconds(2)
const KEEP_ALIVE_TIMEOUT = Duration.seconds(1)
/** Node checks its bounds every quarter of the shorter one; the rest is a slow machine's slack. */
const MARGIN = Duration.millis(1500)

interface Closed {
  /** Everything the server sent. */
  readonly received: string
  /** From the first byte written to the close of the connection. */
  readonly afterMs: number
}

/**
 * A hand-made client on a TCP connection: writes `start`, then each of `trickle` every
 * `every`, and waits for the server to close the connection — at most `within`, else the test
 * fails. Node's own 408 is written straight to the socket, beside the HTTP machinery.
 */
const slowClient = (instance: Instance, options: {
  readonly start: string
  readonly trickle?: ReadonlyArray<string>
  readonly every?: Duration.Duration
  readonly within: Duration.Duration
}) =>
  Effect.async<Closed>((resume) => {
    const url = new URL(instance.baseUrl)
    const socket = connectTcp(Number(url.port), url.hostname)
    const chunks: Array<Buffer> = []
    let started = 0
    let timer: NodeJS.Timeout | undefined
    const pending = [...(options.trickle ?? [])]
    const next = () => {
      const chunk = pending.shift()
      if (chunk === undefined || socket.destroyed) return
      socket.write(chunk)
      timer = setTimeout(next, Duration.toMillis(options.every ?? Duration.millis(100)))
    }
    socket.on("connect", () => {
      started = performance.now()
      socket.write(options.start)
      timer = setTimeout(next, Duration.toMillis(options.every ?? Duration.millis(100)))
    })
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("error", () => {})
    socket.on("close", () => {
      clearTimeout(timer)
      resume(Effect.succeed({ received: Buffer.concat(chunks).toString("latin1"), afterMs: performance.now() - started }))
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  }).pipe(
    Effect.timeoutFail({
      duration: options.within,
      onTimeout: () => new Error(`the server kept the connection open for more than ${Duration.format(options.within)}`)
    }),
    Effect.orDie
  )

const bodyHead = (length: number) =>
  "POST /v1/users/slow-1/connections/gsc/authorize HTTP/1.1\r\nHost: test\r\n" +
  `Authorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`

const settings = {
  server: { headersTimeout: HEADERS_TIMEOUT, requestTimeout: REQUEST_TIMEOUT, keepAliveTimeout: KEEP_ALIVE_TIMEOUT }
}

describe("slow and idle clients", () => {
  layer(HarnessLive({ settings }), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("a body trickled a byte at a time is cut off with a 408 once HTTP_REQUEST_TIMEOUT has passed", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const closed = yield* slowClient(instance, {
          start: `${bodyHead(64)}{`,
          trickle: Array.from({ length: 63 }, () => " "),
          every: Duration.millis(100),
          within: Duration.sum(REQUEST_TIMEOUT, MARGIN)
        })
        expect(closed.received).toMatch(/^HTTP\/1\.1 408 /)
        expect(closed.afterMs).toBeGreaterThanOrEqual(Duration.toMillis(REQUEST_TIMEOUT) - 100)
      }))

    it.effect("a body that stalls after the headers is answered 408 once HTTP_REQUEST_TIMEOUT has passed", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const closed = yield* slowClient(instance, { start: `${bodyHead(2)}{`, within: Duration.sum(REQUEST_TIMEOUT, MARGIN) })
        expect(closed.received).toMatch(/^HTTP\/1\.1 408 /)
        expect(closed.afterMs).toBeGreaterThanOrEqual(Duration.toMillis(REQUEST_TIMEOUT) - 100)
      }))

    it.effect("headers that never end are answered 408 and closed once HTTP_HEADERS_TIMEOUT has passed", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const closed = yield* slowClient(instance, {
          start: "GET /health HTTP/1.1\r\nHost: test\r\n",
          trickle: Array.from({ length: 100 }, (_, i) => `X-Slow-${i}: 1\r\n`),
          every: Duration.millis(50),
          within: Duration.sum(HEADERS_TIMEOUT, MARGIN)
        })
        expect(closed.received).toMatch(/^HTTP\/1\.1 408 /)
        expect(closed.afterMs).toBeGreaterThanOrEqual(Duration.toMillis(HEADERS_TIMEOUT) - 100)
      }))

    it.effect("an idle kept-alive connection is closed once HTTP_KEEP_ALIVE_TIMEOUT has passed", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const closed = yield* slowClient(instance, {
          start: "GET /health HTTP/1.1\r\nHost: test\r\n\r\n",
          // Node closes 1 s after the timeout it announces, so that the client closes first.
          within: Duration.sum(Duration.sum(KEEP_ALIVE_TIMEOUT, Duration.seconds(1)), MARGIN)
        })
        expect(closed.received).toMatch(/^HTTP\/1\.1 200 /)
        expect(closed.received).toMatch(/\r\nKeep-Alive: timeout=1\r\n/i)
        expect(closed.afterMs).toBeGreaterThanOrEqual(Duration.toMillis(KEEP_ALIVE_TIMEOUT) - 100)
      }))
  })
})
