import { Effect, Schema } from "effect"
import type { PlatformDefinition } from "./definition.js"
import { lookupOrNote } from "./lookup.js"

const UserSites = Schema.Struct({
  d: Schema.optionalWith(Schema.NullOr(Schema.Array(Schema.Struct({ Url: Schema.String, IsVerified: Schema.optional(Schema.Boolean) }))), {
    default: () => []
  })
})

/**
 * Bing Webmaster Tools: form bodies, no revocation, and spurious invalid_grant answers. Its
 * PKCE support is unconfirmed: off unless BING_PKCE=true.
 */
export const bing: PlatformDefinition = {
  key: "bing",
  displayName: "Bing Webmaster Tools",
  endpoints: {
    authorize: "https://www.bing.com/webmasters/oauth/authorize",
    token: "https://www.bing.com/webmasters/oauth/token",
    // The token URL (BING_TOKEN_URL included) unless BING_REFRESH_URL is set: one popular client
    // refreshes at https://www.bing.com/webmasters/token, which is unconfirmed.
    refresh: "https://www.bing.com/webmasters/oauth/token",
    sites: "https://www.bing.com/webmaster/api.svc/json/GetUserSites"
  },
  scopes: ["webmaster.manage"],
  scopeSeparator: " ",
  authorizeParams: {},
  pkce: "unconfirmed",
  client: "confidential",
  clientAuth: "body",
  tokenBody: "form",
  paramCase: "snake",
  refresh: "refresh",
  // Bing has answered invalid_grant for refresh tokens that worked moments later.
  invalidGrantTolerance: 3,
  revocation: false,
  account: (context, grant) =>
    lookupOrNote(
      "sites",
      context.getJson(context.settings.urls["sites"] ?? "", grant.accessToken).pipe(
        Effect.flatMap(Schema.decodeUnknown(UserSites)),
        Effect.map((body) => ({ sites: (body.d ?? []).map((s) => ({ url: s.Url, verified: s.IsVerified ?? null })) }))
      )
    ).pipe(Effect.map((providerData) => ({ accountId: "", providerData })))
}
