import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { pgClientLayer } from "../../src/db/Database.js"
import { ConnectionStatusJson, DisconnectResponse, TokenResponseJson } from "../../src/http/schemas.js"
import { TOKEN_KEY } from "../support/app.js"
import { testPool } from "../support/database.js"
import { suiteCatalog } from "../support/catalog.js"
import { call, connect, json, post } from "../support/flow.js"
import { FRONTEND, Harness, HarnessLive } from "../support/harness.js"

const rawTokens = (databaseUrl: string, userId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ accessToken: Uint8Array | null; refreshToken: Uint8Array | null }>`select access_token, refresh_token from oauth_connections where user_id = ${userId}`
  ).pipe(Effect.provide(pgClientLayer(Redacted.make(databaseUrl), testPool)), Effect.orDie)

describe("connect flow over HTTP", () => {
  layer(HarnessLive(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    for (const definition of suiteCatalog) {
      const platform = definition.key
      it.effect(`${platform}: authorize, consent, callback, status, token, refresh, disconnect`, () =>
        Effect.gen(function*() {
          const { instance, fakeOf, databaseUrl } = yield* Harness
          const fake = fakeOf(platform)
          const user = `flow-${platform}`

          const { payload, redirect, callback, confirmed } = yield* connect(instance, user, platform, { return_to: `${FRONTEND}/settings` })
          expect(payload.details.platform).toBe(platform)
          expect(callback.status).toBe(302)
          const landing = new URL(callback.headers.get("location") ?? "")
          expect(landing.origin + landing.pathname).toBe(`${FRONTEND}/settings`)
          // Held for the application's confirmation, which `connect` gave for the same user.
          expect(landing.searchParams.get("status")).toBe("pending")
          expect(landing.searchParams.get("confirmation")).toMatch(/^[A-Za-z0-9_-]{43}$/)
          expect(confirmed?.status).toBe(200)
          expect(landing.searchParams.get("platform")).toBe(platform)
          expect(callback.headers.get("referrer-policy")).toBe("no-referrer")
          expect(callback.headers.get("cache-control")).toBe("no-store")
          expect(landing.search).not.toContain(redirect.searchParams.get("code") ?? "none")

          // The redirect URI of the authorization request is sent again, unchanged, at the token endpoint.
          const exchange = fake.requestsTo("token").find((r) => r.body["grant_type"] === "authorization_code" || r.body["grantType"] === "authorization_code")
          expect(exchange).toBeDefined()
          const authorizeRequest = fake.requestsTo("authorize").at(-1)
          expect(exchange?.body["redirect_uri"] ?? exchange?.body["redirectUri"]).toBe(authorizeRequest?.query["redirect_uri"])

          // Stored encrypted: the raw columns contain no token the platform issued.
          const rows = yield* rawTokens(databaseUrl, user)
          expect(rows).toHaveLength(1)
          const stored = Buffer.concat(rows.flatMap((r) => [r.accessToken, r.refreshToken]).filter((b): b is Uint8Array => b !== null).map((b) => Buffer.from(b)))
          expect(stored.length).toBeGreaterThan(0)
          expect(fake.liveTokens().length).toBeGreaterThan(0)
          for (const token of fake.liveTokens()) expect(stored.includes(Buffer.from(token))).toBe(false)

          const status = yield* json(yield* call(instance, `/v1/users/${user}/connections/${platform}`), ConnectionStatusJson)
          expect(status.connected).toBe(true)
          expect(status.status).toBe("connected")

          const token = yield* call(instance, `/v1/users/${user}/connections/${platform}/token`, { key: TOKEN_KEY })
          expect(token.status).toBe(200)
          const tokenBody = yield* json(token, TokenResponseJson)
          expect(fake.isLiveAccessToken(tokenBody.access_token)).toBe(true)

          const refreshed = yield* post(instance, `/v1/users/${user}/connections/${platform}/refresh`)
          expect(refreshed.status).toBe(200)
          expect((yield* json(refreshed, ConnectionStatusJson)).connected).toBe(true)
          const afterRefresh = yield* json(yield* call(instance, `/v1/users/${user}/connections/${platform}/token`, { key: TOKEN_KEY }), TokenResponseJson)
          expect(fake.isLiveAccessToken(afterRefresh.access_token)).toBe(true)
          // A platform whose tokens do not refresh validates the token it has.
          if (definition.refresh !== "none") expect(afterRefresh.access_token).not.toBe(tokenBody.access_token)

          const gone = yield* call(instance, `/v1/users/${user}/connections/${platform}`, { method: "DELETE" })
          expect(gone.status).toBe(200)
          const goneBody = yield* json(gone, DisconnectResponse)
          expect(goneBody.disconnected).toBe(1)
          expect(goneBody.revoked).toBe(definition.revocation)
          if (definition.revocation) {
            expect(fake.requestsTo("revoke")).toHaveLength(1)
            expect(fake.isLiveAccessToken(afterRefresh.access_token)).toBe(false)
          }
          const after = yield* json(yield* call(instance, `/v1/users/${user}/connections/${platform}`), ConnectionStatusJson)
          expect(after.connected).toBe(false)
          expect(after.status).toBe("disconnected")
        }))
    }
  })
})
