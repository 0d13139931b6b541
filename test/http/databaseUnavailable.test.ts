import { describe, expect, layer } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Layer, Redacted } from "effect"
import { migrate } from "../../src/db/migrations.js"
import { pgClientLayer, SILENCE_GRACE } from "../../src/db/Database.js"
import { DATABASE_RETRY_AFTER_SECONDS } from "../../src/http/middleware.js"
import { type Instance, startInstance, TOKEN_KEY } from "../support/app.js"
import { testSettings } from "../support/config.js"
import { freshDatabase, testPool } from "../support/database.js"
import { call, connect } from "../support/flow.js"
import { FRONTEND, redirectUri } from "../support/harness.js"
import { fakeGsc } from "../support/platforms/index.js"
import { type StallingProxy, stallingProxy } from "../support/stallingProxy.js"

const STATEMENT_TIMEOUT = Duration.seconds(1)
/** The longest a request should wait on a stalled database: one statement's bound. */
const BOUND_MS = Duration.toMillis(Duration.sum(STATEMENT_TIMEOUT, SILENCE_GRACE))
/** Generous: the machine is shared; only a hang, or waiting for a longer bound, should fail. */
const MARGIN_MS = 4_000

interface StalledShape {
  readonly proxy: StallingProxy
  /** Behind the proxy, and so behind its faults. */
  readonly instance: Instance
  /** Every log line of `instance`. */
  readonly logs: ReadonlyArray<string>
  /** Another instance behind the proxy (its own pool and status cache), without the status fast path. */
  readonly contract: Instance
}

class Stalled extends Context.Tag("test/Stalled")<Stalled, StalledShape>() {}

const StalledLive = Layer.scoped(
  Stalled,
  Effect.gen(function*() {
    const databaseUrl = yield* freshDatabase
    yield* migrate().pipe(Effect.provide(pgClientLayer(Redacted.make(databaseUrl), testPool)), Effect.orDie)
    const proxy = yield* stallingProxy(databaseUrl)
    const gsc = yield* fakeGsc()
    const logs: Array<string> = []
    const start = (options: { readonly logs?: Array<string>; readonly fastPath?: boolean }) =>
      startInstance({
        databaseUrl: proxy.url,
        env: gsc.env(redirectUri("gsc")),
        settings: {
          frontendUrl: new URL(FRONTEND),
          database: { ...testSettings().database, pool: { ...testPool, statementTimeout: STATEMENT_TIMEOUT } }
        },
        ...options
      }).pipe(Effect.orDie)
    // The contract first: an instance's logger stays installed on the fiber that started it.
    const contract = yield* start({ fastPath: false })
    return { proxy, instance: yield* start({ logs }), logs, contract }
  })
)

/** `effect` while the proxy forwards nothing; forwarding resumes however it ends. */
const whileFrozen = <A, E, R>(proxy: StallingProxy, effect: Effect.Effect<A, E, R>) =>
  Effect.ensuring(Effect.zipRight(proxy.freeze, effect), proxy.thaw)

/** The answer, read whole, and how long it took; no answer within the bound and the margin fails the test. */
const timedCall = (instance: Instance, path: string, init?: Parameters<Instance["request"]>[1]) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const response = yield* call(instance, path, { ...init, signal: AbortSignal.timeout(BOUND_MS + MARGIN_MS) })
    const body: unknown = yield* Effect.promise(() => response.json())
    return { status: response.status, retryAfter: response.headers.get("retry-after"), body, ms: (yield* Clock.currentTimeMillis) - start }
  })

const unavailable = { status: 503, retryAfter: String(DATABASE_RETRY_AFTER_SECONDS), body: { _tag: "DatabaseUnavailable" } }

/** Polls `probe` every 50 ms until `done` holds or `within` has passed; returns the last value. */
const until = <A, E, R>(probe: Effect.Effect<A, E, R>, done: (value: A) => boolean, within: Duration.DurationInput) =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(within)
    let value = yield* probe
    while (!done(value) && (yield* Clock.currentTimeMillis) < deadline) {
      yield* Effect.sleep("50 millis")
      value = yield* probe
    }
    return value
  })

describe("a stalled database", () => {
  layer(StalledLive, { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("an uncached status read answers 503 DatabaseUnavailable with Retry-After within the statement timeout", () =>
      Effect.gen(function*() {
        const { instance, proxy } = yield* Stalled
        const answer = yield* whileFrozen(proxy, timedCall(instance, "/v1/users/never-read/connections"))
        expect(answer).toMatchObject(unavailable)
        expect(answer.ms).toBeLessThan(BOUND_MS + MARGIN_MS)
      }))

    it.effect("a status read answered before the HttpApi pipeline gives the contract's 503, after one wait for the database", () =>
      Effect.gen(function*() {
        const { contract, instance, logs, proxy } = yield* Stalled
        // A caller is answered at the statement timeout; its statement fails (and is logged) when
        // its connection is closed, a little later: earlier tests' statements first.
        yield* Effect.sleep(Duration.millis(BOUND_MS))
        const before = logs.length
        const [fast, slow] = yield* whileFrozen(
          proxy,
          Effect.all([timedCall(instance, "/v1/users/once/connections/gsc"), timedCall(contract, "/v1/users/once/connections/gsc")], {
            concurrency: "unbounded"
          }).pipe(Effect.tap(() => Effect.sleep(Duration.millis(BOUND_MS))))
        )
        expect({ ...fast, ms: 0 }).toEqual({ ...slow, ms: 0 })
        const failed = logs.slice(before).filter((line) => line.includes("database statement failed"))
        expect(failed).toHaveLength(1)
        // One message key; the reason beside it as error=.
        expect(failed[0]?.match(/(^| )message=/g)).toHaveLength(1)
        expect(failed[0]).toMatch(/ error=/)
      }))

    it.effect("thirty uncached status reads at once are each answered 503 within the statement timeout, none queued behind a stuck batch", () =>
      Effect.gen(function*() {
        const { instance, proxy } = yield* Stalled
        const answers = yield* whileFrozen(
          proxy,
          Effect.forEach(Array.from({ length: 30 }, (_, i) => `crowd-${i}`), (user) => timedCall(instance, `/v1/users/${user}/connections`), {
            concurrency: "unbounded"
          })
        )
        for (const answer of answers) expect(answer).toMatchObject(unavailable)
        // Queued behind the stuck batches, a read would wait for one of them to fail first, then for its own statement.
        expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(BOUND_MS + 300)
      }))

    it.effect("the token endpoint answers 503 DatabaseUnavailable with Retry-After within the statement timeout", () =>
      Effect.gen(function*() {
        const { instance, proxy } = yield* Stalled
        yield* connect(instance, "token-user", "gsc")
        const answer = yield* whileFrozen(proxy, timedCall(instance, "/v1/users/token-user/connections/gsc/token", { key: TOKEN_KEY }))
        expect(answer).toMatchObject(unavailable)
        expect(answer.ms).toBeLessThan(BOUND_MS + MARGIN_MS)
      }))

    it.effect("/health answers 503 DatabaseUnavailable with Retry-After within the statement timeout", () =>
      Effect.gen(function*() {
        const { instance, proxy } = yield* Stalled
        // A pooled connection ready, as in a running service: the stalled statement is sent, not waiting for one.
        expect((yield* timedCall(instance, "/health", { key: null })).status).toBe(200)
        const answer = yield* whileFrozen(proxy, timedCall(instance, "/health", { key: null }))
        expect(answer).toMatchObject(unavailable)
        expect(answer.ms).toBeLessThan(BOUND_MS + MARGIN_MS)
      }))

    it.effect("once the database answers again, the same requests succeed without a restart", () =>
      Effect.gen(function*() {
        const { instance, proxy } = yield* Stalled
        yield* connect(instance, "recovering", "gsc")
        const requests = [
          () => timedCall(instance, "/v1/users/recovering/connections"),
          () => timedCall(instance, "/v1/users/recovering/connections/gsc/token", { key: TOKEN_KEY }),
          () => timedCall(instance, "/health", { key: null })
        ]
        const stalled = yield* whileFrozen(proxy, Effect.all(requests.map((request) => request()), { concurrency: "unbounded" }))
        expect(stalled.map((a) => a.status)).toEqual([503, 503, 503])
        const recovered = yield* Effect.forEach(requests, (request) => request())
        expect(recovered.map((a) => a.status)).toEqual([200, 200, 200])
      }))

    it.effect("once the database answers again, a change made on one instance reaches the other's status cache", () =>
      Effect.gen(function*() {
        const { contract, instance, proxy } = yield* Stalled
        yield* connect(instance, "cached", "gsc")
        const connected = () => Effect.map(timedCall(contract, "/v1/users/cached/connections/gsc"), (a) => a.body)
        expect(yield* connected()).toMatchObject({ connected: true })
        yield* whileFrozen(proxy, timedCall(contract, "/health", { key: null }))
        expect((yield* call(instance, "/v1/users/cached/connections/gsc", { method: "DELETE" })).status).toBe(200)
        expect(yield* until(connected(), (body) => JSON.stringify(body).includes("\"connected\":false"), "5 seconds")).toMatchObject({ connected: false })
      }))
  })
})
