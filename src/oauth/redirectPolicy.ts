import { Effect, Either } from "effect"
import type { DeployEnv } from "../config/DeployEnv.js"
import { InvalidReturnTo, RedirectUriInvalid } from "../domain/errors.js"

export interface OriginPolicy {
  readonly deployEnv: DeployEnv
  readonly frontendUrl: URL
  readonly allowedOrigins: ReadonlyArray<string>
  /** Also refuse production-looking hosts under development. */
  readonly strictEnvMatch: boolean
}

/** The policy of a configuration: FRONTEND_URL, OAUTH_ALLOWED_ORIGINS, DEPLOY_ENV, STRICT_ENV_MATCH. */
export const originPolicyOf = (settings: {
  readonly deployEnv: DeployEnv
  readonly frontendUrl: URL
  readonly allowedOrigins: ReadonlyArray<string>
  readonly oauth: { readonly strictEnvMatch: boolean }
}): OriginPolicy => ({
  deployEnv: settings.deployEnv,
  frontendUrl: settings.frontendUrl,
  allowedOrigins: settings.allowedOrigins,
  strictEnvMatch: settings.oauth.strictEnvMatch
})

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]", "::1"])

export const isLocalHost = (hostname: string): boolean =>
  LOCAL_HOSTS.has(hostname) || hostname.endsWith(".localhost") || hostname.endsWith(".local") ||
  /^127\.\d+\.\d+\.\d+$/.test(hostname)

export const allowedOriginsOf = (policy: OriginPolicy): ReadonlyArray<string> => [
  policy.frontendUrl.origin,
  ...policy.allowedOrigins
]

/** The one callback path of a platform (mix-up defence: a state is only accepted on its own platform's path). */
export const callbackPath = (platform: string) => `/oauth/${platform}/callback`

/**
 * The redirect URI policy, applied to every platform's `<KEY>_REDIRECT_URI`: set (no
 * fallback), absolute, https outside development, on an allowed origin, not
 * contradicting DEPLOY_ENV, and ending with the platform's own callback path. Each failure
 * names the variable and the rule.
 */
export const checkRedirectUri = (
  platform: string,
  variable: string,
  value: string | undefined,
  policy: OriginPolicy
): Either.Either<URL, RedirectUriInvalid> => {
  const fail = (rule: string) => Either.left(new RedirectUriInvalid({ variable, rule }))
  if (value === undefined || value.trim() === "") return fail("must be set (there is no default redirect URI)")
  let url: URL
  try {
    url = new URL(value.trim())
  } catch {
    return fail("must be an absolute URL")
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return fail("must be an http(s) URL")
  if (url.username !== "" || url.password !== "") return fail("must not contain credentials")
  if (url.hash !== "") return fail("must not contain a fragment")
  const development = policy.deployEnv === "development"
  if (!development && url.protocol !== "https:") return fail(`must use https when DEPLOY_ENV is ${policy.deployEnv}`)
  if (policy.deployEnv === "production" && isLocalHost(url.hostname)) {
    return fail(`must not point at a local host (${url.hostname}) when DEPLOY_ENV is production`)
  }
  if (development && policy.strictEnvMatch && !isLocalHost(url.hostname)) {
    return fail(`must point at a local host when DEPLOY_ENV is development and STRICT_ENV_MATCH is on (got ${url.hostname})`)
  }
  const origins = allowedOriginsOf(policy)
  if (!origins.includes(url.origin)) {
    return fail(`origin ${url.origin} must be FRONTEND_URL's origin or one of OAUTH_ALLOWED_ORIGINS (${origins.join(", ")})`)
  }
  // A front end may proxy the callback under a prefix, but it must reach this platform's
  // callback: another platform's path would refuse every state as state_platform_mismatch.
  if (!url.pathname.endsWith(callbackPath(platform))) {
    return fail(`path must end with ${callbackPath(platform)}, this platform's callback path (got ${url.pathname})`)
  }
  return Either.right(url)
}

/**
 * Where the browser may be sent after the callback: only an absolute http(s) URL on an
 * allowed origin, without credentials. Anything else (other hosts, protocol-relative
 * `//host`, `javascript:`, `user@host` tricks) is refused: no open redirect.
 */
export const checkReturnTo = (value: string, policy: OriginPolicy): Either.Either<URL, string> => {
  const raw = value.trim()
  if (raw !== value || /[\u0000-\u001f\\]/.test(value)) return Either.left("must not contain spaces, control characters or backslashes")
  if (!/^https?:\/\/[^/]/i.test(raw)) return Either.left("must be an absolute http(s) URL")
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return Either.left("must be an absolute http(s) URL")
  }
  if (url.username !== "" || url.password !== "") return Either.left("must not contain credentials")
  if (!allowedOriginsOf(policy).includes(url.origin)) return Either.left("must be on FRONTEND_URL's origin or one of OAUTH_ALLOWED_ORIGINS")
  return Either.right(url)
}

/** A caller's `return_to`, checked (null when none was given): InvalidReturnTo names the rule it breaks. */
export const returnToOrFail = (value: string | undefined, policy: OriginPolicy): Effect.Effect<string | null, InvalidReturnTo> =>
  value === undefined
    ? Effect.succeed(null)
    : Either.match(checkReturnTo(value, policy), {
      onLeft: (rule) => Effect.fail(new InvalidReturnTo({ rule })),
      onRight: (url) => Effect.succeed(url.toString())
    })
