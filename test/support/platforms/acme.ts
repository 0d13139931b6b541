import { FakeOAuthPlatform } from "./oauth.js"
import { randomToken, scoped } from "./server.js"

/**
 * "Acme Analytics", the platform of docs/adding-a-platform.md that exists only in the test
 * suite: a confidential client authenticating with HTTP Basic, form bodies, PKCE, rotating
 * refresh tokens, revocation, and a profile endpoint naming the account.
 */
export const startFakeAcme = () => {
  const fake = new FakeOAuthPlatform({
    key: "acme",
    prefix: "ACME",
    clientSecret: "acme-secret",
    requiredAuthorizeParams: { scope: "analytics.read" },
    pkce: "required",
    paramCase: "snake",
    tokenBodies: ["form"],
    issuesRefreshTokens: true,
    defaultExpiresIn: 3600,
    defaultRotation: true,
    accessToken: () => randomToken("acme-at"),
    tokenExtras: () => ({}),
    apiAuth: "bearer"
  }, {}, (f) => ({
    "GET /v1/me": {
      endpoint: "profile",
      handler: (r) => f.bearer(r) === undefined ? { status: 401, json: {} } : { status: 200, json: { id: "acct-9", workspace: "Marketing" } }
    }
  }))
  return fake.start()
}

export const fakeAcme = () => scoped(startFakeAcme)
