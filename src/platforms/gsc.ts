import { Effect, Schema } from "effect"
import type { PlatformDefinition } from "./definition.js"
import { lookupOrNote } from "./lookup.js"

const Sites = Schema.Struct({
  siteEntry: Schema.optionalWith(Schema.Array(Schema.Struct({ siteUrl: Schema.String, permissionLevel: Schema.optional(Schema.String) })), { default: () => [] })
})

/** Google Search Console: Google's OAuth 2.0 with offline access, PKCE and revocation. */
export const gsc: PlatformDefinition = {
  key: "gsc",
  displayName: "Google Search Console",
  endpoints: {
    authorize: "https://accounts.google.com/o/oauth2/v2/auth",
    token: "https://oauth2.googleapis.com/token",
    revoke: "https://oauth2.googleapis.com/revoke",
    sites: "https://www.googleapis.com/webmasters/v3/sites"
  },
  scopes: ["https://www.googleapis.com/auth/webmasters.readonly"],
  scopeSeparator: " ",
  // A refresh token comes only with consent, hence prompt=consent on every authorisation.
  authorizeParams: { access_type: "offline", include_granted_scopes: "true", prompt: "consent" },
  // Google checks the verifier of a challenge it was sent, without requiring one of a confidential client.
  pkce: "supported",
  // RFC 9207: Google adds iss to its authorization responses, but is not relied on to always do.
  issuer: { identifier: "https://accounts.google.com", alwaysSent: false },
  client: "confidential",
  clientAuth: "body",
  tokenBody: "form",
  paramCase: "snake",
  refresh: "token",
  invalidGrantTolerance: 1,
  revocation: true,
  account: (context, grant) =>
    lookupOrNote(
      "sites",
      context.getJson(context.settings.urls["sites"] ?? "", grant.accessToken).pipe(
        Effect.flatMap(Schema.decodeUnknown(Sites)),
        Effect.map((body) => ({ sites: body.siteEntry.map((s) => ({ site_url: s.siteUrl, permission_level: s.permissionLevel ?? null })) }))
      )
    ).pipe(Effect.map((providerData) => ({ accountId: "", providerData })))
}
