import { type FakeOptions, FakeOAuthPlatform, type Spec } from "./oauth.js"
import { randomToken, type Recorded, type Reply, scoped } from "./server.js"

/** GitHub's answer to a request without a User-Agent. */
const noUserAgent: Reply = {
  status: 403,
  json: { message: "Request forbidden by administrative rules. Please make sure your request has a User-Agent header" }
}

const badCredentials: Reply = { status: 401, json: { message: "Bad credentials" } }

const hasUserAgent = (r: Recorded) => (r.headers["user-agent"] ?? "") !== ""

const spec: Spec = {
  key: "forge",
  prefix: "FORGE",
  clientSecret: "forge-client-secret",
  requiredAuthorizeParams: { scope: "read:user" },
  pkce: "optional",
  paramCase: "snake",
  tokenBodies: ["form", "json"],
  issuesRefreshTokens: true,
  defaultExpiresIn: 28800,
  defaultRotation: true,
  accessToken: () => randomToken("forge-at"),
  tokenExtras: () => ({ refresh_token_expires_in: 15897600 }),
  apiAuth: "bearer"
}

/**
 * Forge (test/support/forge.ts) as GitHub answers: every request from the service without a
 * User-Agent is refused with 403; a refused token request is HTTP 200 with `error`; the user
 * is `GET /user`; a grant is deleted with `DELETE /applications/{client_id}/grant`, HTTP Basic
 * and `{"access_token": ...}` (any token of the grant: the service revokes with the refresh
 * token where there is one), 204 when deleted, 404 when there was none.
 */
class FakeForge extends FakeOAuthPlatform {
  constructor(options: FakeOptions) {
    super(spec, options, (f) => ({
      "GET /user": {
        endpoint: "user",
        handler: (r) => !hasUserAgent(r) ? noUserAgent : f.bearer(r) === undefined ? badCredentials : { status: 200, json: { id: 583231, login: "octo" } }
      },
      [`DELETE /applications/${f.clientId}/grant`]: {
        endpoint: "revoke",
        handler: (r) => {
          if (!hasUserAgent(r)) return noUserAgent
          if (r.headers["authorization"] !== `Basic ${Buffer.from(`${f.clientId}:${spec.clientSecret}`).toString("base64")}`) return badCredentials
          const token = r.body["access_token"]
          if (typeof token !== "string") return { status: 422, json: { message: "Validation Failed" } }
          return f.revoke(token) ? { status: 204 } : { status: 404, json: { message: "Not Found" } }
        }
      }
    }))
  }

  protected override token(r: Recorded, refreshAllowed: boolean): Reply {
    if (!hasUserAgent(r)) return noUserAgent
    const reply = super.token(r, refreshAllowed)
    return reply.status === 400 || reply.status === 401 ? { ...reply, status: 200 } : reply
  }

  override env(redirectUri: string): Record<string, string> {
    return {
      ...super.env(redirectUri),
      FORGE_USER_URL: this.server.url("/user"),
      FORGE_APPLICATIONS_URL: this.server.url("/applications")
    }
  }
}

export const startFakeForge = (options: FakeOptions = {}): Promise<FakeOAuthPlatform> => new FakeForge(options).start()

export const fakeForge = (options?: FakeOptions) => scoped(() => startFakeForge(options))
