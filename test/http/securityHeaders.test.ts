import * as HttpApi from "@effect/platform/HttpApi"
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Api } from "../../src/http/Api.js"
import { TOKEN_KEY } from "../support/app.js"
import { call, connect } from "../support/flow.js"
import { Harness, HarnessLive } from "../support/harness.js"

interface Route {
  readonly method: string
  readonly path: string
  readonly key?: string | null
}

const USER = "headers-1"

/** Every endpoint of the contract, in its order, with its path parameters filled in. */
const contractRoutes = (): ReadonlyArray<Route> => {
  const routes: Array<Route> = []
  HttpApi.reflect(Api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) =>
      routes.push({ method: endpoint.method, path: endpoint.path.replace(":user_id", USER).replace(":platform", "gsc") })
  })
  return routes
}

/** What the contract does not list: the routes beside it, and refusals made before any handler. */
const otherRoutes: ReadonlyArray<Route> = [
  { method: "GET", path: "/metrics", key: null },
  { method: "GET", path: "/docs", key: null },
  { method: "GET", path: "/openapi.json", key: null },
  { method: "GET", path: "/no/such/route" },
  { method: "GET", path: "/v1/users/a%20b/connections" },
  { method: "GET", path: `/v1/users/${USER}/connections`, key: null },
  { method: "POST", path: `/v1/users/${USER}/connections/gsc/authorize`, key: "not-a-key-0123456789" }
]

describe("answers that may carry a secret", () => {
  layer(HarnessLive(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("no answer of any route, refusals included, may be stored by a cache or sniffed as another type", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, USER, "gsc")
        const routes = [...contractRoutes(), ...otherRoutes]
        // The contract has 12 endpoints; a new one is covered without a change here.
        expect(routes.length).toBeGreaterThanOrEqual(12 + otherRoutes.length)
        const seen: Array<Record<string, unknown>> = []
        for (const { method, path, key } of routes) {
          const body = method === "POST" ? { body: "{}", headers: { "content-type": "application/json" } } : {}
          const response = yield* call(instance, path, { method, key: key === undefined ? TOKEN_KEY : key, ...body })
          yield* Effect.promise(() => response.arrayBuffer())
          seen.push({
            route: `${method} ${path}`,
            status: response.status,
            cacheControl: response.headers.get("cache-control"),
            contentTypeOptions: response.headers.get("x-content-type-options")
          })
        }
        // The token endpoint did answer a token: the answer this is most about.
        expect(seen.find((s) => s["route"] === `GET /v1/users/${USER}/connections/gsc/token`)?.["status"]).toBe(200)
        expect([...new Set(seen.map((s) => s["status"]))]).toEqual(expect.arrayContaining([200, 302, 400, 401, 404]))
        expect(seen).toEqual(seen.map((s) => ({ ...s, cacheControl: "no-store", contentTypeOptions: "nosniff" })))
      }))
  })
})
