import { readFileSync } from "node:fs"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { ConnectionStatusJson } from "../../src/http/schemas.js"
import { call, connect, json, post } from "../support/flow.js"
import { Harness, HarnessLive } from "../support/harness.js"

// Forge (test/support/forge.ts) has what GitHub asks of a client beyond the four built-in
// platforms; its fake (test/support/platforms/forge.ts) refuses what GitHub refuses.
const { version } = Schema.decodeUnknownSync(Schema.parseJson(Schema.Struct({ version: Schema.String })))(readFileSync("package.json", "utf8"))

describe("a platform with GitHub's quirks, added by the guide's steps", () => {
  layer(HarnessLive(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("every request the service sends it carries the service's User-Agent and the module's headers", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "forge-headers", "forge")
        expect((yield* post(instance, "/v1/users/forge-headers/connections/forge/refresh")).status).toBe(200)
        expect((yield* call(instance, "/v1/users/forge-headers/connections/forge", { method: "DELETE" })).status).toBe(200)
        // The authorize page is the browser's request, not the service's.
        const sent = fakes.forge.requests.filter((r) => r.endpoint !== "authorize")
        expect(new Set(sent.map((r) => `${r.method} ${r.endpoint}`))).toEqual(new Set(["POST token", "GET user", "DELETE revoke"]))
        for (const r of sent) {
          expect(r.headers["user-agent"], r.endpoint).toBe(`oauth-integrations/${version}`)
          expect(r.headers["x-forge-api-version"], r.endpoint).toBe("2022-11-28")
        }
      }))

    it.effect("its account is the Forge user", () =>
      Effect.gen(function*() {
        const { instance } = yield* Harness
        yield* connect(instance, "forge-account", "forge")
        const status = yield* json(yield* call(instance, "/v1/users/forge-account/connections/forge"), ConnectionStatusJson)
        expect(status.accounts[0]?.account_id).toBe("583231")
        expect(status.details).toEqual({ login: "octo" })
      }))

    it.effect("a refresh it refuses with HTTP 200 and error invalid_grant marks the connection needs_reauth", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "forge-dead", "forge")
        fakes.forge.revokeAll()
        const refused = fakes.forge.stats.invalidGrants
        const response = yield* post(instance, "/v1/users/forge-dead/connections/forge/refresh")
        expect(fakes.forge.stats.invalidGrants).toBe(refused + 1)
        expect(response.status).toBe(409)
        expect((yield* json(response))._tag).toBe("InvalidGrant")
        const status = yield* json(yield* call(instance, "/v1/users/forge-dead/connections/forge"), ConnectionStatusJson)
        expect(status).toMatchObject({ connected: false, status: "needs_reauth" })
      }))

    it.effect("disconnect deletes the grant its own way: DELETE /applications/{client_id}/grant, Basic client credentials, JSON access_token", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "forge-revoke", "forge")
        const gone = yield* json(yield* call(instance, "/v1/users/forge-revoke/connections/forge", { method: "DELETE" }))
        expect(gone).toEqual({ platform: "forge", disconnected: 1, revoked: true })
        const deletion = fakes.forge.requestsTo("revoke").at(-1)
        expect(deletion).toMatchObject({ method: "DELETE", path: `/applications/${fakes.forge.clientId}/grant` })
        expect(deletion?.contentType).toContain("application/json")
        expect(Buffer.from((deletion?.headers["authorization"] ?? "").replace(/^Basic /, ""), "base64").toString()).toBe(
          `${fakes.forge.clientId}:forge-client-secret`
        )
        const token = String(deletion?.body["access_token"])
        expect(fakes.forge.issuedTokens()).toContain(token)
        expect(fakes.forge.liveTokens()).not.toContain(token)
        // Not RFC 7009.
        expect(fakes.forge.requests.filter((r) => r.path === "/oauth/revoke")).toEqual([])
      }))
  })
})
