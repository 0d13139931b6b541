import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Effect, Either, Option, Redacted, Schema } from "effect"
import { InvalidGrant, type ProviderError, ProviderResponseInvalid } from "../domain/errors.js"
import type {
  AccountInfo,
  AuthorizationRequest,
  PlatformContext,
  PlatformDefinition,
  PlatformSettings,
  TokenGrant
} from "../platforms/definition.js"
import { call, errorFromCode, oauthError, readJson, readOAuthError } from "./http.js"

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

/** The generic OAuth 2.0 client of one platform: RFC 6749, RFC 7636 (PKCE), RFC 7009 (revocation). */
export interface OAuthClient {
  readonly definition: PlatformDefinition
  readonly settings: PlatformSettings
  readonly context: PlatformContext
  readonly authorizationUrl: (request: AuthorizationRequest) => Effect.Effect<string, ProviderError, HttpClient.HttpClient>
  readonly exchangeCode: (input: {
    readonly code: string
    readonly codeVerifier: Option.Option<Redacted.Redacted<string>>
    readonly redirectUri: string
  }) => Effect.Effect<TokenGrant, ProviderError, HttpClient.HttpClient>
  readonly refresh: (refreshToken: Redacted.Redacted<string>) => Effect.Effect<TokenGrant, ProviderError, HttpClient.HttpClient>
  readonly revoke: (token: Redacted.Redacted<string>) => Effect.Effect<void, ProviderError, HttpClient.HttpClient>
  readonly account: (grant: TokenGrant) => Effect.Effect<AccountInfo, ProviderError, HttpClient.HttpClient>
  /** "unsupported" when the platform has no way to check a token. */
  readonly validate: (accessToken: Redacted.Redacted<string>) => Effect.Effect<"valid" | "unsupported", ProviderError, HttpClient.HttpClient>
}

export const makeOAuthClient = (definition: PlatformDefinition, settings: PlatformSettings): OAuthClient => {
  const platform = definition.key
  const param = (name: Param) => names[definition.paramCase][name]
  const url = (endpoint: string) => settings.urls[endpoint] ?? ""
  const bearer = (token: Redacted.Redacted<string>) =>
    definition.authorizationHeader?.(Redacted.value(token)) ?? `Bearer ${Redacted.value(token)}`

  const withClientAuth = (request: HttpClientRequest.HttpClientRequest, params: Record<string, string>) => {
    const secret = Option.map(settings.clientSecret, Redacted.value)
    if (definition.clientAuth === "basic" && Option.isSome(secret)) {
      // RFC 6749 §2.3.1: both parts are form-urlencoded (space as "+") before Basic encoding.
      return [HttpClientRequest.basicAuth(request, formEncode(settings.clientId), formEncode(secret.value)), params] as const
    }
    const auth: Record<string, string> = { [param("clientId")]: settings.clientId }
    if (Option.isSome(secret)) auth[param("clientSecret")] = secret.value
    return [request, { ...params, ...auth }] as const
  }

  const post = (endpoint: string, params: Record<string, string>) => {
    const [request, body] = withClientAuth(HttpClientRequest.post(url(endpoint)).pipe(HttpClientRequest.acceptJson), params)
    return settings.tokenBody === "json"
      ? HttpClientRequest.bodyUnsafeJson(request, body)
      : HttpClientRequest.bodyUrlParams(request, body)
  }

  const readGrant = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<TokenGrant, ProviderError> =>
    response.status === 200
      ? readJson(platform, response).pipe(Effect.flatMap((body) => decodeTokenGrant(platform, body)))
      : response.status === 400 || response.status === 401
      ? oauthError(platform, response)
      : Effect.fail(new ProviderResponseInvalid({ platform, detail: `the token endpoint answered HTTP ${response.status}` }))

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
      : Effect.fail(new ProviderResponseInvalid({ platform, detail: `the revocation endpoint answered HTTP ${response.status}` }))

  const tokenRequest = (params: Readonly<Record<string, string>>, endpoint = "token") =>
    call(platform, post(endpoint, { ...params }), settings.timeout, readGrant)

  const readApi = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<unknown, InvalidGrant | ProviderResponseInvalid> =>
    response.status === 401 || response.status === 403
      ? Effect.fail(new InvalidGrant({ platform, description: `the platform API answered HTTP ${response.status}` }))
      : response.status >= 200 && response.status < 300
      ? readJson(platform, response)
      : Effect.fail(new ProviderResponseInvalid({ platform, detail: `the platform API answered HTTP ${response.status}` }))

  const context: PlatformContext = {
    platform,
    settings,
    getJson: (target, accessToken) =>
      call(platform, HttpClientRequest.get(target).pipe(HttpClientRequest.acceptJson, HttpClientRequest.setHeader("authorization", bearer(accessToken))), settings.timeout, readApi),
    postJson: (target, body, authorization) =>
      call(
        platform,
        HttpClientRequest.post(target).pipe(
          HttpClientRequest.acceptJson,
          HttpClientRequest.bodyUnsafeJson(body),
          Option.match(authorization, { onNone: () => (r) => r, onSome: (a) => HttpClientRequest.setHeader("authorization", Redacted.value(a)) })
        ),
        settings.timeout,
        readApi
      ),
    tokenRequest: (params) => tokenRequest(params)
  }

  const plainAuthorizationUrl = (request: AuthorizationRequest) => {
    const target = new URL(url("authorize"))
    const query: Record<string, string> = {
      response_type: "code",
      client_id: settings.clientId,
      redirect_uri: request.redirectUri,
      state: Redacted.value(request.state),
      ...definition.authorizeParams
    }
    if (settings.scopes.length > 0) query["scope"] = settings.scopes.join(definition.scopeSeparator)
    if (Option.isSome(request.codeChallenge)) {
      query["code_challenge"] = request.codeChallenge.value
      query["code_challenge_method"] = "S256"
    }
    for (const [name, value] of Object.entries(query)) target.searchParams.set(name, value)
    return target.toString()
  }

  return {
    definition,
    settings,
    context,
    authorizationUrl: (request) =>
      definition.authorizationUrl === undefined
        ? Effect.succeed(plainAuthorizationUrl(request))
        : definition.authorizationUrl(context, request, () => plainAuthorizationUrl(request)),

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

    revoke: (token) => {
      if (!definition.revocation) return Effect.void
      const [request, body] = withClientAuth(HttpClientRequest.post(url("revoke")), { token: Redacted.value(token) })
      return call(platform, HttpClientRequest.bodyUrlParams(request, body), settings.timeout, readRevocation)
    },

    account: (grant) =>
      definition.account === undefined ? Effect.succeed({ accountId: "", providerData: {} }) : definition.account(context, grant),

    validate: (accessToken) =>
      definition.validate === undefined ? Effect.succeed("unsupported" as const) : Effect.as(definition.validate(context, accessToken), "valid" as const)
  }
}
