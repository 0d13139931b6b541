import { createHash, timingSafeEqual } from "node:crypto"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect, Either, Layer, Redacted } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { Authentication, Unauthorized } from "./Api.js"

const digest = (value: string) => createHash("sha256").update(value, "utf8").digest()

/** Equal-length digests compared with timingSafeEqual, every key tried: no early exit. */
const anyMatches = (candidate: Buffer, keys: ReadonlyArray<Buffer>) =>
  keys.reduce((found, key) => timingSafeEqual(candidate, key) || found, false)

/** RFC 7235: the scheme is case-insensitive, then one or more spaces, then the key. */
const BEARER = /^bearer +([\x21-\x7e]+)$/i
const EMPTY_BEARER = /^bearer *$/i

/**
 * Checks an Authorization header against API_KEYS and TOKEN_API_KEYS: the caller, or the
 * Unauthorized that says what is wrong. The bearer decoder of HttpApi hands an empty value
 * for a missing header and does not check the scheme, so the header itself is read here.
 */
export const makeAuthenticator = (config: { readonly apiKeys: ReadonlyArray<Redacted.Redacted>; readonly tokenApiKeys: ReadonlyArray<Redacted.Redacted> }) => {
  const apiKeys = config.apiKeys.map((k) => digest(Redacted.value(k)))
  const tokenKeys = config.tokenApiKeys.map((k) => digest(Redacted.value(k)))
  return (header: string | undefined): Either.Either<{ readonly tokenScope: boolean }, Unauthorized> => {
    if (header === undefined || header.trim() === "") {
      return Either.left(new Unauthorized({ message: "Missing Authorization header: send Authorization: Bearer <api key>" }))
    }
    if (EMPTY_BEARER.test(header.trim())) {
      return Either.left(new Unauthorized({ message: "Empty API key: send Authorization: Bearer <api key>" }))
    }
    const match = BEARER.exec(header)
    if (match === null || match[1] === undefined) {
      return Either.left(new Unauthorized({ message: "Malformed Authorization header: expected Bearer <api key>" }))
    }
    const candidate = digest(match[1])
    const tokenScope = anyMatches(candidate, tokenKeys)
    return !tokenScope && !anyMatches(candidate, apiKeys)
      ? Either.left(new Unauthorized({ message: "Unknown API key" }))
      : Either.right({ tokenScope })
  }
}

export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.map(AppConfig, (config) => {
    const authenticate = makeAuthenticator(config)
    return {
      bearer: () => Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => authenticate(request.headers["authorization"]))
    }
  })
)
