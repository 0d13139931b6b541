import { FakeServer, type Handler, oauthError, randomToken, type Recorded, type Reply, s256 } from "./server.js"

export interface FakeOptions {
  /** Also rotate refresh tokens on refresh (the used one is then refused). */
  readonly rotateRefreshTokens?: boolean
  /** Seconds; null: the token response carries no expires_in. */
  readonly expiresIn?: number | null
  /** What the fake grants when it grants less than asked. */
  readonly grantedScope?: string
  /** Delay of every token-endpoint answer (benchmarks). */
  readonly latencyMs?: number
  /** Refresh served on a separate path (Bing's unconfirmed second URL). */
  readonly separateRefreshPath?: boolean
  /** Answer token responses in camelCase (Wix's casing is unconfirmed). */
  readonly camelCase?: boolean
  /** WordPress: a single-blog token. */
  readonly blog?: { readonly id: number; readonly url: string }
}

export interface Spec {
  readonly key: string
  readonly prefix: string
  readonly clientSecret: string | null
  /** Query parameters the authorize endpoint insists on. */
  readonly requiredAuthorizeParams: Readonly<Record<string, string>>
  readonly pkce: "required" | "optional" | "none"
  readonly paramCase: "snake" | "camel"
  /** Bodies the token endpoint reads; any other is refused with 400 invalid_request, as a real platform would. */
  readonly tokenBodies: ReadonlyArray<"form" | "json">
  readonly issuesRefreshTokens: boolean
  readonly defaultExpiresIn: number | null
  readonly defaultRotation: boolean
  readonly accessToken: () => string
  readonly tokenExtras: (options: FakeOptions) => Readonly<Record<string, unknown>>
  /** API calls: "bearer" (Authorization: Bearer t) or "raw" (Authorization: t). */
  readonly apiAuth: "bearer" | "raw"
  /** RFC 9207: the `iss` the authorize endpoint adds to its redirects, code or error. */
  readonly issuer?: string
}

interface Code {
  readonly clientId: string
  readonly redirectUri: string
  readonly challenge: string | undefined
  readonly scope: string
  used: boolean
}

export interface Stats {
  codeExchanges: number
  refreshes: number
  invalidGrants: number
  readonly refreshesByToken: Map<string, number>
}

const names = {
  snake: { grantType: "grant_type", code: "code", redirectUri: "redirect_uri", clientId: "client_id", clientSecret: "client_secret", codeVerifier: "code_verifier", refreshToken: "refresh_token" },
  camel: { grantType: "grantType", code: "code", redirectUri: "redirectUri", clientId: "clientId", clientSecret: "clientSecret", codeVerifier: "codeVerifier", refreshToken: "refreshToken" }
} as const

const str = (value: unknown) => (typeof value === "string" ? value : undefined)

/**
 * A platform's OAuth 2.0 server: authorize (auto-consent, or a scripted denial), code
 * exchange with PKCE and redirect-URI checks, refresh with optional rotation, revocation,
 * and the account endpoints, in the platform's wire format.
 */
export class FakeOAuthPlatform {
  readonly clientId: string
  readonly stats: Stats = { codeExchanges: 0, refreshes: 0, invalidGrants: 0, refreshesByToken: new Map() }
  readonly server: FakeServer
  private readonly codes = new Map<string, Code>()
  private readonly accessTokens = new Set<string>()
  private readonly refreshTokens = new Map<string, Set<string>>()
  private readonly issued: Array<string> = []
  private denial: { readonly error: string; readonly description: string | undefined } | undefined
  private spurious = 0

  constructor(readonly spec: Spec, readonly options: FakeOptions, extraRoutes: (fake: FakeOAuthPlatform) => Record<string, { endpoint: string; handler: Handler }> = () => ({})) {
    this.clientId = `${spec.key}-client-id`
    const routes: Record<string, { endpoint: string; handler: Handler }> = {
      "GET /oauth/authorize": { endpoint: "authorize", handler: (r) => this.authorize(r) },
      "POST /oauth/token": { endpoint: "token", handler: (r) => this.token(r, !options.separateRefreshPath) },
      "POST /oauth/revoke": { endpoint: "revoke", handler: (r) => this.revokeRequest(r) },
      ...extraRoutes(this)
    }
    if (options.separateRefreshPath === true) {
      routes["POST /webmasters/token"] = { endpoint: "refresh", handler: (r) => this.token(r, true) }
    }
    this.server = new FakeServer(routes, (endpoint) => (endpoint === "token" || endpoint === "refresh" ? options.latencyMs ?? 0 : 0))
  }

  get clientSecret() {
    return this.spec.clientSecret
  }

  get requests() {
    return this.server.requests
  }

  /** Variables pointing the service at this fake. */
  env(redirectUri: string): Record<string, string> {
    const p = this.spec.prefix
    const env: Record<string, string> = {
      [`${p}_CLIENT_ID`]: this.clientId,
      [`${p}_REDIRECT_URI`]: redirectUri,
      [`${p}_AUTHORIZE_URL`]: this.server.url("/oauth/authorize"),
      [`${p}_TOKEN_URL`]: this.server.url("/oauth/token")
    }
    if (this.spec.clientSecret !== null) env[`${p}_CLIENT_SECRET`] = this.spec.clientSecret
    return env
  }

  /** The next authorization answers with this error instead of a code. */
  deny(error = "access_denied", description?: string) {
    this.denial = { error, description }
  }

  /** The next n refreshes answer invalid_grant for live tokens without killing them (Bing). */
  spuriousInvalidGrant(n: number) {
    this.spurious = n
  }

  /** A new live access token, remembered among the issued ones. */
  private newAccessToken(make: () => string = this.spec.accessToken) {
    const token = make()
    this.accessTokens.add(token)
    this.issued.push(token)
    return token
  }

  private newRefreshToken(accessToken: string) {
    const token = randomToken(`${this.spec.key}-rt`)
    this.refreshTokens.set(token, new Set([accessToken]))
    this.issued.push(token)
    return token
  }

  /** A live token pair, minted without the browser flow. */
  mint(): { readonly accessToken: string; readonly refreshToken: string | undefined; readonly expiresIn: number | null } {
    const accessToken = this.newAccessToken()
    const refreshToken = this.spec.issuesRefreshTokens ? this.newRefreshToken(accessToken) : undefined
    return { accessToken, refreshToken, expiresIn: this.options.expiresIn === undefined ? this.spec.defaultExpiresIn : this.options.expiresIn }
  }

  /** Kills every token: refreshes get invalid_grant, API calls 401. */
  revokeAll() {
    this.accessTokens.clear()
    this.refreshTokens.clear()
  }

  isLiveAccessToken(token: string) {
    return this.accessTokens.has(token)
  }

  /** Every live token, to search stored bytes for. */
  liveTokens(): ReadonlyArray<string> {
    return [...this.accessTokens, ...this.refreshTokens.keys()]
  }

  /** Every token this fake ever issued (access, refresh, visitor), rotated and revoked ones included: to search logs for. */
  issuedTokens(): ReadonlyArray<string> {
    return [...this.issued]
  }

  isLiveRefreshToken(token: string) {
    return this.refreshTokens.has(token)
  }

  setBehaviour(...args: Parameters<FakeServer["setBehaviour"]>) {
    this.server.setBehaviour(...args)
  }

  requestsTo(endpoint: string) {
    return this.server.requestsTo(endpoint)
  }

  start() {
    return this.server.start().then(() => this)
  }

  close() {
    return this.server.close()
  }

  /** The access token an API request presented, if it is live. */
  bearer(request: Recorded): string | undefined {
    const header = request.headers["authorization"] ?? ""
    const token = this.spec.apiAuth === "bearer" ? (header.startsWith("Bearer ") ? header.slice(7) : undefined) : header
    return token !== undefined && this.accessTokens.has(token) ? token : undefined
  }

  issueCode(redirectUri: string, challenge: string | undefined, scope: string) {
    const code = randomToken(`${this.spec.key}-code`)
    this.codes.set(code, { clientId: this.clientId, redirectUri, challenge, scope, used: false })
    return code
  }

  private authorize(r: Recorded): Reply {
    const q = r.query
    const problems: Array<string> = []
    if (q["response_type"] !== "code") problems.push("response_type must be code")
    if (q["client_id"] !== this.clientId) problems.push("unknown client_id")
    if (q["redirect_uri"] === undefined) problems.push("redirect_uri is required")
    if (q["state"] === undefined || q["state"] === "") problems.push("state is required")
    for (const [name, value] of Object.entries(this.spec.requiredAuthorizeParams)) {
      if (q[name] !== value) problems.push(`${name} must be ${value}`)
    }
    if (this.spec.pkce === "required" && (q["code_challenge"] === undefined || q["code_challenge_method"] !== "S256")) {
      problems.push("PKCE S256 is required")
    }
    if (problems.length > 0) return { status: 400, text: problems.join("; ") }
    const target = new URL(q["redirect_uri"] ?? "")
    if (this.denial !== undefined) {
      target.searchParams.set("error", this.denial.error)
      if (this.denial.description !== undefined) target.searchParams.set("error_description", this.denial.description)
      this.denial = undefined
    } else {
      target.searchParams.set("code", this.issueCode(q["redirect_uri"] ?? "", q["code_challenge"], q["scope"] ?? ""))
    }
    target.searchParams.set("state", q["state"] ?? "")
    if (this.spec.issuer !== undefined) target.searchParams.set("iss", this.spec.issuer)
    return { status: 302, headers: { location: target.toString() } }
  }

  private clientAuthenticated(r: Recorded, clientIdParam: string | undefined): boolean {
    const n = names[this.spec.paramCase]
    const basic = r.headers["authorization"]?.startsWith("Basic ") === true
      ? Buffer.from(r.headers["authorization"].slice(6), "base64").toString("utf8").split(":").map((part) => decodeURIComponent(part.replace(/\+/g, " ")))
      : undefined
    const id = basic?.[0] ?? clientIdParam
    if (id !== this.clientId) return false
    if (this.spec.clientSecret === null) return true
    return (basic?.[1] ?? str(r.body[n.clientSecret])) === this.spec.clientSecret
  }

  private tokenResponse(accessToken: string, refreshToken: string | undefined, scope: string): Reply {
    const expiresIn = this.options.expiresIn === undefined ? this.spec.defaultExpiresIn : this.options.expiresIn
    const camel = this.options.camelCase === true
    const json: Record<string, unknown> = {
      [camel ? "accessToken" : "access_token"]: accessToken,
      [camel ? "tokenType" : "token_type"]: "Bearer",
      ...this.spec.tokenExtras(this.options)
    }
    if (refreshToken !== undefined) json[camel ? "refreshToken" : "refresh_token"] = refreshToken
    if (expiresIn !== null) json[camel ? "expiresIn" : "expires_in"] = expiresIn
    if (scope !== "") json["scope"] = scope
    return { status: 200, json }
  }

  private invalidGrant(description: string): Reply {
    this.stats.invalidGrants++
    return oauthError("invalid_grant", description)
  }

  protected token(r: Recorded, refreshAllowed: boolean): Reply {
    const n = names[this.spec.paramCase]
    const grant = str(r.body[n.grantType])
    const clientIdParam = str(r.body[n.clientId])
    const body = r.contentType?.includes("application/json") === true ? "json" : r.contentType?.includes("application/x-www-form-urlencoded") === true ? "form" : undefined
    if (body === undefined || !this.spec.tokenBodies.includes(body)) {
      return oauthError("invalid_request", `the body must be ${this.spec.tokenBodies.join(" or ")}`)
    }
    if (grant === "anonymous" && this.spec.key === "wix") {
      if (clientIdParam !== this.clientId) return oauthError("invalid_client", "unknown client", 401)
      const visitor = this.newAccessToken(() => randomToken("wix-visitor"))
      return { status: 200, json: { access_token: visitor, expires_in: 14400, token_type: "Bearer" } }
    }
    if (!this.clientAuthenticated(r, clientIdParam)) return oauthError("invalid_client", "The OAuth client was not found.", 401)
    if (grant === "authorization_code") {
      const codeValue = str(r.body[n.code]) ?? ""
      const code = this.codes.get(codeValue)
      if (code === undefined || code.used) return this.invalidGrant("Malformed auth code.")
      code.used = true
      if (str(r.body[n.redirectUri]) !== code.redirectUri) return this.invalidGrant("redirect_uri_mismatch")
      if (code.challenge !== undefined) {
        const verifier = str(r.body[n.codeVerifier])
        if (verifier === undefined || s256(verifier) !== code.challenge) return this.invalidGrant("Invalid code verifier.")
      } else if (this.spec.pkce === "required") return this.invalidGrant("Missing code verifier.")
      this.stats.codeExchanges++
      const pair = this.mint()
      return this.tokenResponse(pair.accessToken, pair.refreshToken, this.options.grantedScope ?? code.scope)
    }
    if (grant === "refresh_token" && refreshAllowed && this.spec.issuesRefreshTokens) {
      const presented = str(r.body[n.refreshToken]) ?? ""
      this.stats.refreshes++
      this.stats.refreshesByToken.set(presented, (this.stats.refreshesByToken.get(presented) ?? 0) + 1)
      const live = this.refreshTokens.get(presented)
      if (live === undefined) return this.invalidGrant("Token has been expired or revoked.")
      if (this.spurious > 0) {
        this.spurious--
        return this.invalidGrant("Token has been expired or revoked.")
      }
      const accessToken = this.newAccessToken()
      const rotate = this.options.rotateRefreshTokens ?? this.spec.defaultRotation
      if (!rotate) {
        live.add(accessToken)
        return this.tokenResponse(accessToken, undefined, "")
      }
      this.refreshTokens.delete(presented)
      const next = this.newRefreshToken(accessToken)
      return this.tokenResponse(accessToken, next, "")
    }
    return oauthError("unsupported_grant_type", `grant ${grant ?? "(none)"} is not supported here`)
  }

  /**
   * Ends what `token` grants: a refresh token with every access token issued under it, or an
   * access token alone. False when the token was not live.
   */
  revoke(token: string): boolean {
    const access = this.refreshTokens.get(token)
    if (access !== undefined) {
      for (const a of access) this.accessTokens.delete(a)
      this.refreshTokens.delete(token)
      return true
    }
    return this.accessTokens.delete(token)
  }

  /** RFC 7009. */
  private revokeRequest(r: Recorded): Reply {
    return this.revoke(str(r.body["token"]) ?? "") ? { status: 200, json: {} } : { status: 400, json: { error: "invalid_token" } }
  }
}
