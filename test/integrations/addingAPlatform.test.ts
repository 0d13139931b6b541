import { describe, expect, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { ProviderResponseInvalid } from "../../src/domain/errors.js"
import type { PlatformDefinition } from "../../src/platforms/definition.js"
import { platforms } from "../../src/registry/platforms.js"
import { startInstance, TOKEN_KEY } from "../support/app.js"
import { ConnectionStatusJson, DisconnectResponse, PlatformsResponse, TokenResponseJson } from "../../src/http/schemas.js"
import { call, connect, json, post } from "../support/flow.js"
import { FRONTEND, Harness, HarnessLive, redirectUri } from "../support/harness.js"
import { fakeAcme } from "../support/platforms/acme.js"

// Step 1 of docs/adding-a-platform.md: the module. This platform exists only in the test suite.
const Profile = Schema.Struct({ id: Schema.String, workspace: Schema.String })

const acme: PlatformDefinition = {
  key: "acme",
  displayName: "Acme Analytics",
  endpoints: {
    authorize: "https://auth.acme.example/oauth/authorize",
    token: "https://auth.acme.example/oauth/token",
    revoke: "https://auth.acme.example/oauth/revoke",
    profile: "https://api.acme.example/v1/me"
  },
  scopes: ["analytics.read"],
  scopeSeparator: " ",
  authorizeParams: {},
  pkce: "supported",
  client: "confidential",
  clientAuth: "basic",
  tokenBody: "form",
  paramCase: "snake",
  refresh: "token",
  invalidGrantTolerance: 1,
  revocation: true,
  // The profile names the account: without it the connection has no account id, so its
  // failure fails the callback (nothing is stored, the user tries again).
  account: (context, grant) =>
    context.getJson(context.settings.urls["profile"] ?? "", grant.accessToken).pipe(
      Effect.flatMap(Schema.decodeUnknown(Profile)),
      Effect.catchTag("ParseError", () => new ProviderResponseInvalid({ platform: context.platform, detail: "the profile has no id" })),
      Effect.map((p) => ({ accountId: p.id, providerData: { workspace: p.workspace } }))
    )
}

// Step 2: two lines in the registry (its import and its place in the list).
// src/registry/platforms.ts lists the built-in four; the test appends acme to that same list
// and hands it to the registry through startInstance({ catalog }) (PlatformCatalog.layer),
// which is what those lines do for PlatformCatalog.Default. Nothing else about the service changes.
const catalog = [...platforms, acme]

describe("adding a platform: one module, two lines, its variables, no migration", () => {
  layer(HarnessLive(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.scoped("a platform known only to the tests connects, refreshes and disconnects like the built-in ones", () =>
      Effect.gen(function*() {
        const { databaseUrl, env } = yield* Harness
        // Step 4: its fake, in test/support/platforms/acme.ts.
        const fake = yield* fakeAcme()
        // Step 3: its variables. The three every platform needs, and one URL per endpoint of
        // the module pointing it at the fake (as a proxy would be configured).
        const instance = yield* startInstance({
          databaseUrl,
          catalog,
          settings: { frontendUrl: new URL(FRONTEND) },
          env: {
            ...env,
            ACME_CLIENT_ID: fake.clientId,
            ACME_CLIENT_SECRET: "acme-secret",
            ACME_REDIRECT_URI: redirectUri("acme"),
            ACME_AUTHORIZE_URL: fake.server.url("/oauth/authorize"),
            ACME_TOKEN_URL: fake.server.url("/oauth/token"),
            ACME_REVOKE_URL: fake.server.url("/oauth/revoke"),
            ACME_PROFILE_URL: fake.server.url("/v1/me")
          }
        })

        const platformsListed = yield* json(yield* call(instance, "/v1/platforms"), PlatformsResponse)
        expect(platformsListed.platforms.map((p) => p.key)).toEqual(catalog.map((d) => d.key))

        const { callback, confirmed } = yield* connect(instance, "acme-user", "acme")
        // Authorised, held for confirmation, and confirmed for the same user by `connect`.
        expect(new URL(callback.headers.get("location") ?? "").searchParams.get("status")).toBe("pending")
        expect(confirmed?.status).toBe(200)
        const exchange = fake.requestsTo("token").at(-1)
        expect(exchange?.headers["authorization"]).toMatch(/^Basic /)
        expect(exchange?.body["client_secret"]).toBeUndefined()

        const status = yield* json(yield* call(instance, "/v1/users/acme-user/connections/acme"), ConnectionStatusJson)
        expect(status).toMatchObject({ connected: true, display_name: "Acme Analytics" })
        expect(status.details).toEqual({ workspace: "Marketing" })
        expect(status.accounts[0]?.account_id).toBe("acct-9")

        const token = yield* json(yield* call(instance, "/v1/users/acme-user/connections/acme/token", { key: TOKEN_KEY }), TokenResponseJson)
        expect(fake.isLiveAccessToken(token.access_token)).toBe(true)
        expect((yield* post(instance, "/v1/users/acme-user/connections/acme/refresh")).status).toBe(200)
        const gone = yield* json(yield* call(instance, "/v1/users/acme-user/connections/acme", { method: "DELETE" }), DisconnectResponse)
        expect(gone).toEqual({ platform: "acme", disconnected: 1, revoked: true })
      }))
  })
})
