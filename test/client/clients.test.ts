import { existsSync } from "node:fs"
import { spawnSync } from "node:child_process"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { layer } from "@effect/vitest"
import { Effect } from "effect"
import { expect } from "vitest"
import { makeClient } from "../../src/client/effect.js"
import { createClient, OAuthIntegrationsError } from "../../src/client/fetch.js"
import { API_KEY, TOKEN_KEY } from "../support/app.js"
import { call, connect, json } from "../support/flow.js"
import { FRONTEND, Harness, HarnessLive } from "../support/harness.js"

const promise = <A>(make: () => Promise<A>) => Effect.promise(make)

layer(HarnessLive(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
  it.effect("the fetch client makes the common calls against a running server, its answers checked by the contract's schemas", () =>
    Effect.gen(function*() {
      const { instance } = yield* Harness
      const client = createClient({ baseUrl: instance.baseUrl, apiKey: API_KEY })
      const tokens = createClient({ baseUrl: `${instance.baseUrl}/`, apiKey: TOKEN_KEY })

      expect((yield* promise(() => client.stepFive("cl-fetch"))).valid).toBe(false)
      const authorize = yield* promise(() => client.authorize("cl-fetch", "gsc", { return_to: `${FRONTEND}/settings` }))
      expect(new URL(authorize.auth_url).searchParams.get("state")).toBe(authorize.state)
      yield* connect(instance, "cl-fetch", "gsc")
      const status = yield* promise(() => client.status("cl-fetch", "gsc"))
      expect(status).toMatchObject({ platform: "gsc", connected: true, status: "connected" })
      expect((yield* promise(() => client.statuses("cl-fetch"))).connections.find((c) => c.platform === "gsc")?.connected).toBe(true)
      expect((yield* promise(() => client.stepFive("cl-fetch"))).valid).toBe(true)
      const token = yield* promise(() => tokens.token("cl-fetch", "gsc"))
      expect(token.access_token.length).toBeGreaterThan(10)
      const session = yield* promise(() => client.createConnectSession({ user_id: "cl-fetch", platforms: ["gsc"] }))
      expect(new URL(session.connect_url).hash).toMatch(/^#session=/)

      // Errors are thrown with the answer's status and tag.
      const forbidden = yield* promise(() => client.token("cl-fetch", "gsc").then(() => undefined, (e: unknown) => e))
      expect(forbidden).toBeInstanceOf(OAuthIntegrationsError)
      expect(forbidden).toMatchObject({ status: 403, tag: "Forbidden" })
      const refused = yield* promise(() => client.confirm("cl-fetch", "gsc", "not-a-code-0123456789abcdef").then(() => undefined, (e: unknown) => e))
      expect(refused).toMatchObject({ status: 400 })
      const unknown = yield* promise(() => client.status("cl-fetch", "myspace").then(() => undefined, (e: unknown) => e))
      expect(unknown).toMatchObject({ status: 404, tag: "UnknownPlatform" })

      expect(yield* promise(() => client.disconnect("cl-fetch", "gsc"))).toMatchObject({ platform: "gsc", disconnected: 1 })
      expect((yield* promise(() => client.status("cl-fetch", "gsc"))).connected).toBe(false)
    }))

  it.effect("the Effect client is derived from the contract: answers decoded to domain values, errors typed", () =>
    Effect.gen(function*() {
      const { instance } = yield* Harness
      yield* connect(instance, "cl-effect", "bing")
      const client = yield* makeClient({ baseUrl: instance.baseUrl, apiKey: API_KEY })
      const status = yield* client.connections.status({ path: { user_id: "cl-effect", platform: "bing" } })
      expect(status).toMatchObject({ platform: "bing", displayName: expect.any(String), connected: true })
      const unknown = yield* client.connections.status({ path: { user_id: "cl-effect", platform: "myspace" } }).pipe(
        Effect.map(() => "answered"),
        Effect.catchTag("UnknownPlatform", (e) => Effect.succeed(`unknown: ${e.known.join(",")}`))
      )
      expect(unknown).toMatch(/^unknown: .*bing/)
      const created = yield* client.connectSessions.create({ payload: { user_id: "cl-effect", platforms: ["bing"] } })
      expect(created.platforms).toEqual(["bing"])
      expect(created.expiresAt).toBeInstanceOf(Date)
      const bad = yield* makeClient({ baseUrl: instance.baseUrl, apiKey: "wrong-key-0123456789" }).pipe(
        Effect.flatMap((c) => c.connections.list({ path: { user_id: "cl-effect" } })),
        Effect.map(() => "answered"),
        Effect.catchTag("Unauthorized", () => Effect.succeed("unauthorized"))
      )
      expect(bad).toBe("unauthorized")
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.effect("the fetch client's paths are the contract's", () =>
    Effect.gen(function*() {
      const { instance } = yield* Harness
      const spec = (yield* json(yield* call(instance, "/openapi.json", { key: null }))) as { paths: Record<string, Record<string, unknown>> }
      const seen: Array<string> = []
      const recording = createClient({
        baseUrl: "http://client.test",
        apiKey: "k",
        fetch: (async (input: string | URL | Request, init?: RequestInit) => {
          const path = new URL(String(input)).pathname
            .replace(/^\/v1\/users\/[^/]+/, "/v1/users/{user_id}")
            .replace(/(\/connections)\/[^/]+/, "$1/{platform}")
          seen.push(`${init?.method ?? "GET"} ${path}`)
          return new Response(JSON.stringify({ _tag: "Stub" }), { status: 500 })
        }) as typeof fetch
      })
      const calls = [
        recording.statuses("u"),
        recording.status("u", "gsc"),
        recording.stepFive("u"),
        recording.authorize("u", "gsc"),
        recording.confirm("u", "gsc", "c"),
        recording.token("u", "gsc"),
        recording.disconnect("u", "gsc"),
        recording.createConnectSession({ user_id: "u" })
      ]
      yield* promise(() => Promise.allSettled(calls))
      expect(seen).toHaveLength(8)
      for (const entry of seen) {
        const [method, path] = entry.split(" ") as [string, string]
        expect(spec.paths[path]?.[method.toLowerCase()], entry).toBeDefined()
      }
    }))

  it("the package exports the clients as oauth-integrations/client, with their types", () => {
    // Resolved by Node through the package's exports, as a consumer's import is (dist is built by the tests' setup).
    const result = spawnSync(process.execPath, ["--input-type=module", "-e",
      "const m = await import('oauth-integrations/client'); console.log(typeof m.createClient, typeof m.makeClient, typeof m.Api)"], {
      cwd: process.cwd(),
      encoding: "utf8"
    })
    expect(result.stderr).toBe("")
    expect(result.stdout.trim()).toBe("function function function")
    expect(existsSync("dist/client/index.d.ts")).toBe(true)
  })
})
