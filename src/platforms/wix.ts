import { Effect, Option, Redacted, Schema } from "effect"
import { ProviderResponseInvalid } from "../domain/errors.js"
import type { PlatformDefinition } from "./definition.js"
import { lookupOrNote } from "./lookup.js"

const RedirectSession = Schema.Struct({ redirectSession: Schema.Struct({ fullUrl: Schema.String }) })
const Site = Schema.Struct({ siteId: Schema.String })
const Instance = Schema.Struct({ instance: Schema.Struct({ siteMemberId: Schema.String }) })
/** `data` is a JSON string in Wix's tokens; an object is accepted too. */
const MemberClaims = Schema.parseJson(Schema.Struct({ data: Schema.Union(Instance, Schema.parseJson(Instance)) }))

/**
 * The member id in an access token's payload, for display only: never verified, never relied
 * on. Wix's access tokens read `OauthNG.JWS.<header>.<payload>.<signature>`; a plain
 * `<header>.<payload>.<signature>` is read too. Anything else gives null.
 */
export const memberIdOf = (accessToken: string): string | null => {
  const parts = accessToken.split(".")
  const payload = parts.length >= 3 ? parts[parts.length - 2] : undefined
  if (payload === undefined) return null
  const decoded = Schema.decodeUnknownOption(MemberClaims)(Buffer.from(payload, "base64url").toString("utf8"))
  return Option.match(decoded, { onNone: () => null, onSome: (claims) => claims.data.instance.siteMemberId })
}

/**
 * Wix Headless: a public client (no secret) with PKCE and camelCase token parameters. The
 * login URL comes from a redirect session created with a visitor token, unless
 * WIX_AUTHORIZE_URL names a direct authorize page.
 */
export const wix: PlatformDefinition = {
  key: "wix",
  displayName: "Wix",
  endpoints: {
    authorize: "https://www.wix.com/oauth/authorize",
    token: "https://www.wixapis.com/oauth2/token",
    redirectSession: "https://www.wixapis.com/redirect-session/v1/redirect-session",
    site: "https://www.wixapis.com/sites/v1/site"
  },
  scopes: ["offline_access"],
  scopeSeparator: " ",
  authorizeParams: {},
  pkce: "required",
  client: "public",
  clientAuth: "body",
  tokenBody: "json",
  paramCase: "camel",
  refresh: "token",
  invalidGrantTolerance: 1,
  revocation: false,
  authorizationHeader: (accessToken) => accessToken,
  authorizationUrl: (context, request, plain) =>
    context.settings.overridden.has("authorize")
      ? Effect.sync(plain)
      : Effect.gen(function*() {
        const visitor = yield* context.tokenRequest({ grantType: "anonymous" })
        const body = yield* context.postJson(
          context.settings.urls["redirectSession"] ?? "",
          {
            auth: {
              authRequest: {
                clientId: context.settings.clientId,
                redirectUri: request.redirectUri,
                codeChallenge: Option.getOrElse(request.codeChallenge, () => ""),
                codeChallengeMethod: "S256",
                responseType: "code",
                responseMode: "query",
                scope: context.settings.scopes.join(" "),
                state: Redacted.value(request.state)
              }
            }
          },
          Option.some(visitor.accessToken)
        )
        const session = yield* Schema.decodeUnknown(RedirectSession)(body).pipe(
          Effect.mapError(() => new ProviderResponseInvalid({ platform: context.platform, detail: "the redirect session has no fullUrl" }))
        )
        const url = session.redirectSession.fullUrl
        if (!/^https?:\/\//i.test(url)) {
          return yield* new ProviderResponseInvalid({ platform: context.platform, detail: "the redirect session URL is not http(s)" })
        }
        return url
      }),
  account: (context, grant) =>
    lookupOrNote(
      "site",
      context.getJson(context.settings.urls["site"] ?? "", grant.accessToken).pipe(
        Effect.flatMap(Schema.decodeUnknown(Site)),
        Effect.map((site) => ({ site_id: site.siteId }))
      )
    ).pipe(
      Effect.map((data) => ({
        accountId: "",
        providerData: { ...data, member_id: memberIdOf(Redacted.value(grant.accessToken)) }
      }))
    )
}
