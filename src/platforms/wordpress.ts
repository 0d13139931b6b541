import { Effect, Option, Schema } from "effect"
import { ProviderResponseInvalid } from "../domain/errors.js"
import type { PlatformDefinition } from "./definition.js"

const Me = Schema.Struct({ ID: Schema.Union(Schema.Number, Schema.NonEmptyTrimmedString), username: Schema.optional(Schema.String) })
const BlogId = Schema.Union(Schema.Number, Schema.NumberFromString)

/** WordPress.com's classic OAuth 2.0 server: tokens without expiry or refresh, validated through /me. */
export const wordpress: PlatformDefinition = {
  key: "wordpress",
  displayName: "WordPress.com",
  endpoints: {
    authorize: "https://public-api.wordpress.com/oauth2/authorize",
    token: "https://public-api.wordpress.com/oauth2/token",
    me: "https://public-api.wordpress.com/rest/v1/me"
  },
  // "global": one token for all the user's sites (without it the user picks one blog).
  scopes: ["global"],
  scopeSeparator: " ",
  authorizeParams: {},
  // The classic server has no PKCE (the OAuth 2.1 server under /oauth2-1/ requires it).
  pkce: "none",
  client: "confidential",
  clientAuth: "body",
  tokenBody: "form",
  paramCase: "snake",
  refresh: "none",
  invalidGrantTolerance: 1,
  revocation: false,
  account: (context, grant) =>
    Effect.gen(function*() {
      const blogId = Schema.decodeUnknownOption(BlogId)(grant.fields["blog_id"]).pipe(Option.filter((id) => id > 0))
      const blogUrl = typeof grant.fields["blog_url"] === "string" ? grant.fields["blog_url"] : null
      if (Option.isSome(blogId)) {
        return { accountId: String(blogId.value), providerData: { blog_id: blogId.value, blog_url: blogUrl } }
      }
      // A global token (blog_id 0): the account is the WordPress.com user, so /me is required.
      // Its failure fails the callback with nothing stored, and the user tries again: transient
      // failures stay transient (platform_unavailable). /me refusing the token it just issued, or
      // answering without a user id, is an answer we cannot use (never an account id of ""), and
      // not the code being rejected.
      const me = yield* context.getJson(context.settings.urls["me"] ?? "", grant.accessToken).pipe(
        Effect.flatMap(Schema.decodeUnknown(Me)),
        Effect.catchTags({
          ParseError: () => new ProviderResponseInvalid({ platform: context.platform, detail: "/rest/v1/me answered without a user ID" }),
          InvalidGrant: () => new ProviderResponseInvalid({ platform: context.platform, detail: "/rest/v1/me refused the token just issued" })
        })
      )
      return { accountId: String(me.ID), providerData: { blog_id: 0, blog_url: null, username: me.username ?? null } }
    }),
  validate: (context, accessToken) => Effect.asVoid(context.getJson(context.settings.urls["me"] ?? "", accessToken))
}
