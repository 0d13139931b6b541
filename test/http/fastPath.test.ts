import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { API_KEY, type Instance } from "../support/app.js"
import { call, connect } from "../support/flow.js"
import { Harness, HarnessLive } from "../support/harness.js"

/** Status, headers (but the date) and body of a GET, as a client sees them. */
const answer = (instance: Instance, path: string, key?: string | null) =>
  Effect.gen(function*() {
    const response = yield* call(instance, path, key === undefined ? {} : { key })
    const headers = Object.fromEntries([...response.headers].filter(([name]) => name !== "date"))
    return { status: response.status, headers, type: response.headers.get("content-type"), body: yield* Effect.promise(() => response.text()) }
  })

/** http_requests_total for a route and status, from /metrics. */
const served = (instance: Instance, route: string, status: number) =>
  Effect.gen(function*() {
    const text = yield* Effect.promise(() => call(instance, "/metrics", { key: null }).pipe(Effect.runPromise).then((r) => r.text()))
    const line = text.split("\n").find((l) =>
      l.startsWith("http_requests_total{") && l.includes(`route="${route}"`) && l.includes(`status="${status}"`) && l.includes(`method="GET"`))
    return line === undefined ? 0 : Number(line.split(" ").at(-1))
  })

describe("status reads answered before the HttpApi pipeline", () => {
  layer(HarnessLive(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.scoped("give the same status, headers and body as the HttpApi handlers, for answers and refusals alike", () =>
      Effect.gen(function*() {
        const { instance, startAnother } = yield* Harness
        // The HttpApi handlers alone: each answer encoded by the contract's schema from the value the handler returns.
        const contract = yield* startAnother({}, { fastPath: false })
        yield* connect(instance, "fast-1", "gsc")
        yield* connect(instance, "fast-1", "bing")
        const long = "u".repeat(200)
        const cases: Array<readonly [string, string | null | undefined]> = [
          ["/v1/users/fast-1/connections", undefined],
          ["/v1/users/fast-1/connections", undefined], // a cache hit on the instance that has the fast path
          ["/v1/users/fast-1/connections/gsc", undefined],
          ["/v1/users/fast-1/connections/wix", undefined],
          ["/v1/users/nobody/connections", undefined],
          [`/v1/users/${long}/connections`, undefined],
          [`/v1/users/${long}u/connections`, undefined],
          ["/v1/users/fast-1/connections/nope", undefined],
          ["/v1/users/fast-1/connections?x=1", undefined],
          ["/v1/users/fast%2D1/connections", undefined],
          ["/v1/users/fast-1/connections", null],
          ["/v1/users/fast-1/connections", "not-a-key-0123456789"]
        ]
        for (const [path, key] of cases) {
          const viaFastPath = yield* answer(instance, path, key)
          const viaContract = yield* answer(contract, path, key)
          expect({ path, ...viaFastPath }).toEqual({ path, ...viaContract })
        }
        expect((yield* answer(instance, "/v1/users/fast-1/connections")).body).toContain("\"connected\":true")
      }))

    it.effect("counts the requests it answers in http_requests_total, like every other request", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        const route = "/v1/users/{user_id}/connections"
        const before = yield* served(instance, route, 200)
        for (let i = 0; i < 3; i++) expect((yield* answer(instance, "/v1/users/fast-2/connections")).status).toBe(200)
        expect((yield* served(instance, route, 200)) - before).toBe(3)
        expect((yield* answer(instance, "/v1/users/fast-2/connections", `x${API_KEY}`)).status).toBe(401)
      }))
  })
})
