import * as Headers from "@effect/platform/Headers"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Effect, Either, Option, Redacted, Schema } from "effect"
import { InvalidGrant, type ProviderError, ProviderResponseInvalid } from "../domain/errors.js"
import type {
  AccountInfo,
  AuthorizationRequest,
  PlatformAnswer,
  PlatformContext,
  PlatformDefinition,
  PlatformRequest,
  PlatformSettings,
  TokenGrant
} from "../platforms/definition.js"
import { call, errorFromCode, oauthError, oauthErrorIn, readJson, readOAuthError } from "./http.js"
import { userAgent } from "./userAgent.js"

const Seconds = Schema.Union(Schema.Number, Schema.NumberFromString)
const OptionalString = Schema.optional(Schema.NullOr(Schema.String))

/** A token response in OAuth's snake_case or in camelCase (Wix's casing is unconfirmed). */
const TokenBody = Schema.Struct({
  access_token: OptionalString,
  accessToken: OptionalString,
  refresh_token: OptionalString,
  refreshToken: OptionalString,
  expires_in: Schema.optional(Schema.NullOr(Seconds)),
  expiresIn: Schema.optional(Schema.NullOr(Seconds)),
  scope: OptionalString,
  token_type: OptionalString,
  tokenType: OptionalString
})
const decodeTokenBody = Schema.decodeUnknownEither(TokenBody)

const SECRET_FIELD = /token|secret|code|password/i
const KEPT_FIELD = /^token_?type$/i

const present = (...values: ReadonlyArray<string | null | undefined>) =>
  Option.fromNullable(values.find((v): v is string => typeof v === "string" && v.length > 0))

/** Reads a token endpoint's 200 answer; the fields kept beside the tokens never include one. */
export const decodeTokenGrant = (platform: string, body: unknown): Either.Either<TokenGrant, ProviderResponseInvalid> => {
  const invalid = (detail: string) => Either.left(new ProviderResponseInvalid({ platform, detail }))
  const decoded = decodeTokenBody(body)
  if (Either.isLeft(decoded) || typeof body !== "object" || body === null) return invalid("the token response is not a JSON object of the expected shape")
  const b = decoded.right
  const accessToken = present(b.access_token, b.accessToken)
  if (Option.isNone(accessToken)) return invalid("the token response has no access_token")
  const expiresIn = Option.fromNullable(b.expires_in ?? b.expiresIn)
  if (Option.isSome(expiresIn) && !(Number.isFinite(expiresIn.value) && expiresIn.value > 0)) return invalid("expires_in is not a positive number")
  const fields = Object.fromEntries(
    Object.entries(body).filter(([name]) => KEPT_FIELD.test(name) || !SECRET_FIELD.test(name))
  )
  return Either.right({
    accessToken: Redacted.make(accessToken.value),
    refreshToken: Option.map(present(b.refresh_token, b.refreshToken), Redacted.make),
    expiresIn,
    scope: present(b.scope),
    tokenType: present(b.token_type, b.tokenType),
    fields
  })
}

const names = {
  snake: { grantType: "grant_type", code: "code", redirectUri: "redirect_uri", clientId: "client_id", clientSecret: "client_secret", codeVerifier: "code_verifier", refreshToken: "refresh_token" },
  camel: { grantType: "grantType", code: "code", redirectUri: "redirectUri", clientId: "clientId", clientSecret: "clientSecret", codeVerifier: "codeVerifier", refreshToken: "refreshToken" }
} as const

type Param = keyof typeof names.snake

/** application/x-www-form-urlencoded, as URLSearchParams writes it (RFC 6749 Appendix B). */
const formEncode = (value: string) => new URLSearchParams([["v", value]]).toString().slice(2)

/**
 * The generic OAuth 2.0 client of one platform: RFC 6749, RFC 7636 (PKCE), RFC 7009
 * (revocation), every request sent with `http`, the platform's client (see PlatformHttp).
 */
export interface OAuthClient {
  readonly definition: PlatformDefinition
  readonly settings: PlatformSettings
  readonly context: PlatformContext
  readonly authorizationUrl: (request: AuthorizationRequest) => Effect.Effect<string, ProviderError>
  readonly exchangeCode: (input: {
    readonly code: string
    readonly codeVerifier: Option.Option<Redacted.Redacted<string>>
    readonly redirectUri: string
  }) => Effect.Effect<TokenGrant, ProviderError>
  readonly refresh: (refreshToken: Redacted.Redacted<string>) => Effect.Effect<TokenGrant, ProviderError>
  readonly revoke: (token: Redacted.Redacted<string>) => Effect.Effect<void, ProviderError>
  readonly account: (grant: TokenGrant) => Effect.Effect<AccountInfo, ProviderError>
  /** "unsupported" when the platform has no way to check a token. */
  readonly validate: (accessToken: Redacted.Redacted<string>) => Effect.Effect<"valid" | "unsupported", ProviderError>
}

export const makeOAuthClient = (definition: PlatformDefinition, settings: PlatformSettings, http: HttpClient.HttpClient): OAuthClient => {
  const platform = definition.key
  const param = (name: Param) => names[definition.paramCase][name]
  const url = (endpoint: string) => settings.urls[endpoint] ?? ""
  const bearer = (token: Redacted.Redacted<string>) =>
    definition.authorizationHeader?.(Redacted.value(token)) ?? `Bearer ${Redacted.value(token)}`
  const headers = Headers.fromInput({ "user-agent": userAgent, ...definition.headers })
  /** Every request to the platform starts here: its headers on. */
  const request = (method: PlatformRequest["method"], target: string) => HttpClientRequest.make(method)(target, { headers })
  const send = <A, E>(prepared: HttpClientRequest.HttpClientRequest, read: (response: HttpClientResponse.HttpClientResponse) => Effect.Effect<A, E>) =>
    call(platform, http, prepared, read)

  const basicAuth = (prepared: HttpClientRequest.HttpClientRequest, secret: string) =>
    // RFC 6749 §2.3.1: both parts are form-urlencoded (space as "+") before Basic encoding.
    HttpClientRequest.basicAuth(prepared, formEncode(settings.clientId), formEncode(secret))

  const withClientAuth = (prepared: HttpClientRequest.HttpClientRequest, params: Record<string, string>) => {
    const secret = Option.map(settings.clientSecret, Redacted.value)
    if (definition.clientAuth === "basic" && Option.isSome(secret)) return [basicAuth(prepared, secret.value), params] as const
    const auth: Record<string, string> = { [param("clientId")]: settings.clientId }
    if (Option.isSome(secret)) auth[param("clientSecret")] = secret.value
    return [prepared, { ...params, ...auth }] as const
  }

  const post = (endpoint: string, params: Record<string, string>) => {
    const [prepared, body] = withClientAuth(request("POST", url(endpoint)).pipe(HttpClientRequest.acceptJson), params)
    return settings.tokenBody === "json"
      ? HttpClientRequest.bodyUnsafeJson(prepared, body)
      : HttpClientRequest.bodyUrlParams(prepared, body)
  }

  const invalid = (detail: string) => Effect.fail(new ProviderResponseInvalid({ platform, detail }))

  /**
   * A token endpoint's answer. An `error` field is read as the RFC 6749 §5.2 error it is,
   * whatever the status: the RFC puts errors in 400 and 401 answers, some platforms (GitHub)
   * answer them with 200.
   */
  const readGrant = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<TokenGrant, ProviderError> =>
    Effect.flatMap(Effect.either(response.json), (body) => {
      const status = response.status
      const error = Either.isRight(body) ? oauthErrorIn(body.right) : Option.none()
      if (Option.isSome(error)) return Effect.fail(errorFromCode(platform, status, error.value))
      if (status !== 200 && status !== 400 && status !== 401) return invalid(`the token endpoint answered HTTP ${status}`)
      if (Either.isLeft(body)) return invalid(`HTTP ${status} with a body that is not JSON`)
      return status === 200 ? decodeTokenGrant(platform, body.right) : invalid(`HTTP ${status} without an OAuth error code`)
    })

  /**
   * RFC 7009 §2.2: 200 whether or not the token was valid. Google answers 400 invalid_token
   * for a token already dead, which is revoked too; any other answer is a failure the caller sees.
   */
  const readRevocation = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<void, ProviderError> =>
    response.status === 200
      ? Effect.void
      : response.status === 400
      ? Effect.flatMap(readOAuthError(platform, response), (body) =>
        body.error === "invalid_token" ? Effect.void : Effect.fail(errorFromCode(platform, response.status, body)))
      : response.status === 401
      ? oauthError(platform, response)
      : invalid(`the revocation endpoint answered HTTP ${response.status}`)

  const tokenRequest = (params: Readonly<Record<string, string>>, endpoint = "token") => send(post(endpoint, { ...params }), readGrant)

  const readApi = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<unknown, InvalidGrant | ProviderResponseInvalid> =>
    response.status === 401 || response.status === 403
      ? Effect.fail(new InvalidGrant({ platform, description: `the platform API answered HTTP ${response.status}` }))
      : response.status >= 200 && response.status < 300
      ? readJson(platform, response)
      : invalid(`the platform API answered HTTP ${response.status}`)

  const readAnswer = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<PlatformAnswer> =>
    Effect.map(Effect.option(response.json), (json) => ({ status: response.status, json: Option.filter(json, (value) => value !== null) }))

  const authorized = (prepared: HttpClientRequest.HttpClientRequest, authorization: PlatformRequest["authorization"]) => {
    if (authorization === undefined) return prepared
    if (authorization !== "client") return HttpClientRequest.setHeader(prepared, "authorization", Redacted.value(authorization))
    return Option.match(settings.clientSecret, {
      onNone: () => prepared,
      onSome: (secret) => basicAuth(prepared, Redacted.value(secret))
    })
  }

  const context: PlatformContext = {
    platform,
    settings,
    getJson: (target, accessToken) =>
      send(request("GET", target).pipe(HttpClientRequest.acceptJson, HttpClientRequest.setHeader("authorization", bearer(accessToken))), readApi),
    postJson: (target, body, authorization) =>
      send(
        request("POST", target).pipe(
          HttpClientRequest.acceptJson,
          HttpClientRequest.bodyUnsafeJson(body),
          Option.match(authorization, { onNone: () => (r) => r, onSome: (a) => HttpClientRequest.setHeader("authorization", Redacted.value(a)) })
        ),
        readApi
      ),
    tokenRequest: (params) => tokenRequest(params),
    request: (options) => {
      const prepared = authorized(request(options.method, options.url).pipe(HttpClientRequest.acceptJson), options.authorization)
      return send(options.json === undefined ? prepared : HttpClientRequest.bodyUnsafeJson(prepared, options.json), readAnswer)
    }
  }

  const plainAuthorizationUrl = (authorization: AuthorizationRequest) => {
    const target = new URL(url("authorize"))
    const query: Record<string, string> = {
      response_type: "code",
      client_id: settings.clientId,
      redirect_uri: authorization.redirectUri,
      state: Redacted.value(authorization.state),
      ...definition.authorizeParams
    }
    if (settings.scopes.length > 0) query["scope"] = settings.scopes.join(definition.scopeSeparator)
    if (Option.isSome(authorization.codeChallenge)) {
      query["code_challenge"] = authorization.codeChallenge.value
      query["code_challenge_method"] = "S256"
    }
    for (const [name, value] of Object.entries(query)) target.searchParams.set(name, value)
    return target.toString()
  }

  const revokeRfc7009 = (token: Redacted.Redacted<string>) => {
    const [prepared, body] = withClientAuth(request("POST", url("revoke")), { token: Redacted.value(token) })
    return send(HttpClientRequest.bodyUrlParams(prepared, body), readRevocation)
  }

  return {
    definition,
    settings,
    context,
    authorizationUrl: (authorization) =>
      definition.authorizationUrl === undefined
        ? Effect.succeed(plainAuthorizationUrl(authorization))
        : definition.authorizationUrl(context, authorization, () => plainAuthorizationUrl(authorization)),

    exchangeCode: ({ code, codeVerifier, redirectUri }) => {
      const params: Record<string, string> = {
        [param("grantType")]: "authorization_code",
        [param("code")]: code,
        [param("redirectUri")]: redirectUri
      }
      if (Option.isSome(codeVerifier)) params[param("codeVerifier")] = Redacted.value(codeVerifier.value)
      return tokenRequest(params)
    },

    refresh: (refreshToken) =>
      definition.refresh === "none"
        ? Effect.fail(new InvalidGrant({ platform, description: "the platform does not refresh tokens" }))
        : tokenRequest({ [param("grantType")]: "refresh_token", [param("refreshToken")]: Redacted.value(refreshToken) }, definition.refresh),

    revoke: (token) =>
      !definition.revocation ? Effect.void : definition.revoke === undefined ? revokeRfc7009(token) : definition.revoke(context, token),

    account: (grant) =>
      definition.account === undefined ? Effect.succeed({ accountId: "", providerData: {} }) : definition.account(context, grant),

    validate: (accessToken) =>
      definition.validate === undefined ? Effect.succeed("unsupported" as const) : Effect.as(definition.validate(context, accessToken), "valid" as const)
  }
}
