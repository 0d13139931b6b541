import { Effect, Redacted, Schema } from "effect"
import { InvalidClient, ProviderResponseInvalid } from "../../src/domain/errors.js"
import type { PlatformDefinition } from "../../src/platforms/definition.js"

const User = Schema.Struct({ id: Schema.Number, login: Schema.String })

/**
 * "Forge", a code host that exists only in the test suite, with what GitHub asks of a client
 * beyond the four built-in platforms: it refuses a request without a User-Agent (403), answers
 * a refused token request with HTTP 200 and an `error` field, and revokes a grant with `DELETE
 * /applications/{client_id}/grant` (HTTP Basic with the client's credentials, a JSON body
 * `{access_token}`) rather than RFC 7009. Added by the steps of docs/adding-a-platform.md: this
 * module, a line in the suite's catalog (test/support/catalog.ts), its variables (its fake's
 * `env`), its fake (test/support/platforms/forge.ts).
 */
export const forge: PlatformDefinition = {
  key: "forge",
  displayName: "Forge",
  endpoints: {
    authorize: "https://forge.example/login/oauth/authorize",
    token: "https://forge.example/login/oauth/access_token",
    user: "https://api.forge.example/user",
    applications: "https://api.forge.example/applications"
  },
  scopes: ["read:user"],
  scopeSeparator: " ",
  authorizeParams: {},
  pkce: "supported",
  client: "confidential",
  clientAuth: "body",
  tokenBody: "form",
  paramCase: "snake",
  refresh: "token",
  invalidGrantTolerance: 1,
  revocation: true,
  headers: { "X-Forge-Api-Version": "2022-11-28" },
  // The account is the Forge user: without it there is no account id to store.
  account: (context, grant) =>
    context.getJson(context.settings.urls["user"] ?? "", grant.accessToken).pipe(
      Effect.flatMap(Schema.decodeUnknown(User)),
      Effect.catchTag("ParseError", () => new ProviderResponseInvalid({ platform: context.platform, detail: "/user answered without a user id" })),
      Effect.map((user) => ({ accountId: String(user.id), providerData: { login: user.login } }))
    ),
  revoke: (context, token) =>
    context.request({
      method: "DELETE",
      url: `${context.settings.urls["applications"] ?? ""}/${encodeURIComponent(context.settings.clientId)}/grant`,
      json: { access_token: Redacted.value(token) },
      authorization: "client"
    }).pipe(Effect.flatMap(({ status }): Effect.Effect<void, InvalidClient | ProviderResponseInvalid> => {
      // 404: the grant is gone already.
      if (status === 204 || status === 404) return Effect.void
      if (status === 401) return Effect.fail(new InvalidClient({ platform: context.platform, error: "bad_credentials" }))
      return Effect.fail(new ProviderResponseInvalid({ platform: context.platform, detail: `the grant deletion answered HTTP ${status}` }))
    }))
}
