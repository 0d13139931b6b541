import { type FakeOptions, FakeOAuthPlatform } from "./oauth.js"
import { randomToken, type Reply, scoped } from "./server.js"

export { FakeOAuthPlatform } from "./oauth.js"
export type { FakeOptions } from "./oauth.js"

const unauthorized: Reply = { status: 401, json: { error: "invalid_token" } }

/**
 * Google Search Console: PKCE, offline access, refresh tokens only on consent, revocation, a
 * site list, and Google's iss on every authorization response (RFC 9207).
 */
export const startFakeGsc = (options: FakeOptions = {}) => {
  const fake = new FakeOAuthPlatform({
    key: "gsc",
    prefix: "GSC",
    clientSecret: "gsc-client-secret",
    requiredAuthorizeParams: { access_type: "offline", prompt: "consent", include_granted_scopes: "true" },
    pkce: "required",
    paramCase: "snake",
    tokenBodies: ["form"],
    issuesRefreshTokens: true,
    defaultExpiresIn: 3599,
    defaultRotation: false,
    accessToken: () => randomToken("ya29.gsc-at"),
    tokenExtras: () => ({}),
    apiAuth: "bearer",
    issuer: "https://accounts.google.com"
  }, options, (f) => ({
    "GET /webmasters/v3/sites": {
      endpoint: "sites",
      handler: (r) =>
        f.bearer(r) === undefined
          ? unauthorized
          : { status: 200, json: { siteEntry: [{ siteUrl: "sc-domain:example.com", permissionLevel: "siteOwner" }] } }
    }
  }))
  const env = fake.env.bind(fake)
  fake.env = (redirectUri) => ({
    ...env(redirectUri),
    GSC_REVOKE_URL: fake.server.url("/oauth/revoke"),
    GSC_SITES_URL: fake.server.url("/webmasters/v3/sites")
  })
  return fake.start()
}

/**
 * Bing Webmaster Tools: form bodies, rotating refresh tokens, spurious invalid_grant. PKCE is
 * unconfirmed: the fake neither asks for it nor refuses it, and checks a verifier when a challenge came.
 */
export const startFakeBing = (options: FakeOptions = {}) => {
  const fake = new FakeOAuthPlatform({
    key: "bing",
    prefix: "BING",
    clientSecret: "bing-client-secret",
    requiredAuthorizeParams: { scope: "webmaster.manage" },
    pkce: "optional",
    paramCase: "snake",
    tokenBodies: ["form"],
    issuesRefreshTokens: true,
    defaultExpiresIn: 3600,
    defaultRotation: true,
    accessToken: () => randomToken("bing-at"),
    tokenExtras: () => ({}),
    apiAuth: "bearer"
  }, options, (f) => ({
    "GET /webmaster/api.svc/json/GetUserSites": {
      endpoint: "sites",
      handler: (r) => f.bearer(r) === undefined ? unauthorized : { status: 200, json: { d: [{ Url: "https://example.com/", IsVerified: true }] } }
    }
  }))
  const env = fake.env.bind(fake)
  fake.env = (redirectUri) => ({
    ...env(redirectUri),
    BING_SITES_URL: fake.server.url("/webmaster/api.svc/json/GetUserSites"),
    // Without it refreshes must follow BING_TOKEN_URL (PLATFORMS.md: the same token URL by default).
    ...(options.separateRefreshPath === true ? { BING_REFRESH_URL: fake.server.url("/webmasters/token") } : {})
  })
  return fake.start()
}

/** WordPress.com's classic server: no refresh token, no expiry, blog_id/blog_url, /rest/v1/me. */
export const startFakeWordpress = (options: FakeOptions = {}) => {
  const fake = new FakeOAuthPlatform({
    key: "wordpress",
    prefix: "WORDPRESS",
    clientSecret: "wordpress-client-secret",
    requiredAuthorizeParams: {},
    pkce: "none",
    paramCase: "snake",
    tokenBodies: ["form"],
    issuesRefreshTokens: false,
    defaultExpiresIn: null,
    defaultRotation: false,
    accessToken: () => randomToken("wp-at"),
    tokenExtras: (o) => (o.blog === undefined ? { blog_id: "0", blog_url: null } : { blog_id: String(o.blog.id), blog_url: o.blog.url }),
    apiAuth: "bearer"
  }, options, (f) => ({
    "GET /rest/v1/me": {
      endpoint: "me",
      handler: (r) => f.bearer(r) === undefined ? { status: 403, json: { error: "authorization_required" } } : { status: 200, json: { ID: 4242, username: "writer", display_name: "A Writer" } }
    }
  }))
  const env = fake.env.bind(fake)
  fake.env = (redirectUri) => ({ ...env(redirectUri), WORDPRESS_ME_URL: fake.server.url("/rest/v1/me") })
  return fake.start()
}

/**
 * A Wix access token as Wix issues them: `OauthNG.JWS.<header>.<payload>.<signature>`, the
 * payload's `data` a JSON string holding instance.siteMemberId.
 */
export const wixAccessToken = (memberId: string) =>
  [
    "OauthNG",
    "JWS",
    Buffer.from(JSON.stringify({ kid: "fake", alg: "RS256" })).toString("base64url"),
    Buffer.from(JSON.stringify({ data: JSON.stringify({ instance: { siteMemberId: memberId } }), iat: 1, exp: 2, nonce: randomToken("n") })).toString("base64url"),
    randomToken("sig")
  ].join(".")

/** Wix Headless: a public client, camelCase parameters, redirect sessions, raw Authorization header. */
export const startFakeWix = (options: FakeOptions = {}) => {
  const fake = new FakeOAuthPlatform({
    key: "wix",
    prefix: "WIX",
    clientSecret: null,
    requiredAuthorizeParams: { scope: "offline_access" },
    pkce: "required",
    paramCase: "camel",
    // PLATFORMS.md: Wix's token endpoint reads JSON or form bodies with the same names.
    tokenBodies: ["json", "form"],
    issuesRefreshTokens: true,
    defaultExpiresIn: 14400,
    defaultRotation: true,
    accessToken: () => wixAccessToken("member-123"),
    tokenExtras: () => ({}),
    apiAuth: "raw"
  }, options, (f) => ({
    "POST /redirect-session/v1/redirect-session": {
      endpoint: "redirectSession",
      handler: (r) => {
        if (f.bearer(r) === undefined) return unauthorized
        const auth = r.body["auth"]
        const authRequest = typeof auth === "object" && auth !== null && "authRequest" in auth ? auth.authRequest : r.body["authRequest"]
        if (typeof authRequest !== "object" || authRequest === null) return { status: 400, json: { message: "authRequest is required" } }
        const a: Record<string, unknown> = { ...authRequest }
        const url = new URL(f.server.url("/oauth/authorize"))
        const params: Record<string, unknown> = {
          client_id: a["clientId"],
          redirect_uri: a["redirectUri"],
          response_type: a["responseType"],
          state: a["state"],
          code_challenge: a["codeChallenge"],
          code_challenge_method: a["codeChallengeMethod"],
          scope: a["scope"]
        }
        for (const [k, v] of Object.entries(params)) if (typeof v === "string") url.searchParams.set(k, v)
        return { status: 200, json: { redirectSession: { id: randomToken("rs"), fullUrl: url.toString() } } }
      }
    },
    // The fake's reading of an unconfirmed shape: {"siteId": "..."}.
    "GET /sites/v1/site": {
      endpoint: "site",
      handler: (r) => f.bearer(r) === undefined ? unauthorized : { status: 200, json: { siteId: "site-abc" } }
    }
  }))
  const env = fake.env.bind(fake)
  fake.env = (redirectUri) => {
    const { WIX_AUTHORIZE_URL: _direct, ...rest } = env(redirectUri)
    return {
      ...rest,
      WIX_REDIRECT_SESSION_URL: fake.server.url("/redirect-session/v1/redirect-session"),
      WIX_SITE_URL: fake.server.url("/sites/v1/site")
    }
  }
  return fake.start()
}

export const fakeGsc = (options?: FakeOptions) => scoped(() => startFakeGsc(options))
export const fakeBing = (options?: FakeOptions) => scoped(() => startFakeBing(options))
export const fakeWordpress = (options?: FakeOptions) => scoped(() => startFakeWordpress(options))
export const fakeWix = (options?: FakeOptions) => scoped(() => startFakeWix(options))
