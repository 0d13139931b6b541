import { Config, ConfigError, Duration, Effect, Either, Option } from "effect"
import { describeConfigError } from "../config/ConfigInvalid.js"
import type { Settings } from "../config/Settings.js"
import { type DeployEnv, isDevelopment } from "../config/DeployEnv.js"
import * as Rules from "../config/rules.js"
import type { PkceSupport, PlatformDefinition, PlatformSettings } from "../platforms/definition.js"
import { checkRedirectUri, originPolicyOf } from "./redirectPolicy.js"

/** Whether a platform can be used, and if not, what to set. */
export type Availability =
  | { readonly _tag: "Configured"; readonly settings: PlatformSettings }
  | { readonly _tag: "NotConfigured"; readonly problems: ReadonlyArray<string> }
  | { readonly _tag: "Misconfigured"; readonly problems: ReadonlyArray<string> }

/** GSC, BING, WORDPRESS, WIX: the prefix of a platform's variables. */
export const variablePrefix = (key: string) => key.toUpperCase().replace(/[^A-Z0-9]/g, "_")

/** redirectSession → REDIRECT_SESSION */
const endpointVariable = (prefix: string, name: string) =>
  `${prefix}_${name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()}_URL`

/** A challenge is sent unless the platform is not known to check it. */
export const pkceByDefault = (support: PkceSupport) => support === "required" || support === "supported"

/**
 * The rule `<KEY>_PKCE` breaks, if any. A public client has only PKCE to bind the code to
 * itself (RFC 9700 §2.1.1); a confidential one still needs it against code injection, where a
 * code taken from a victim's flow is sent back to the callback with the attacker's own state
 * (RFC 9700 §4.5): the client secret does not stop that, the verifier the platform checks does.
 * Development may turn it off for a platform that only supports it.
 */
const pkceProblem = (definition: PlatformDefinition, pkce: boolean, deployEnv: DeployEnv): string | undefined => {
  if (pkce) return undefined
  if (definition.client === "public") return "must be true for a public client (no client secret)"
  if (definition.pkce === "required") return "must be true: the platform requires PKCE"
  if (definition.pkce === "supported" && !isDevelopment(deployEnv)) {
    return "must be true outside development: the platform supports PKCE, which stops authorization code injection (RFC 9700 §4.5)"
  }
  return undefined
}

const optionalString = (name: string) => Rules.variable(name, Config.option)

const endpointUrl = (name: string, httpsRequired: boolean) =>
  Rules.variable(name, (c) =>
    c.pipe(
      Config.mapOrFail((raw) =>
        Either.flatMap(Rules.parseAbsoluteHttpUrl(raw), (url) =>
          httpsRequired && url.protocol !== "https:"
            ? Either.left("must use https outside development")
            : Either.right(url.toString())).pipe(Either.mapLeft((rule) => ConfigError.InvalidData([], rule)))),
      Config.option
    ))

/**
 * Reads `<KEY>_CLIENT_ID`, `<KEY>_CLIENT_SECRET`, `<KEY>_REDIRECT_URI`, `<KEY>_SCOPES`,
 * `<KEY>_TOKEN_BODY`, `<KEY>_PKCE`, `<KEY>_TIMEOUT` and one `<KEY>_<ENDPOINT>_URL` per endpoint. A
 * platform without a client id is not configured; any other problem makes it
 * misconfigured, with every problem named. Neither stops the other platforms.
 */
export const readSettings = (definition: PlatformDefinition, app: Settings): Effect.Effect<Availability> =>
  Effect.gen(function*() {
    const prefix = variablePrefix(definition.key)
    const httpsRequired = app.deployEnv !== "development"
    const names = Object.keys(definition.endpoints)
    const config = Config.all({
      clientId: optionalString(`${prefix}_CLIENT_ID`),
      clientSecret: Rules.secret(`${prefix}_CLIENT_SECRET`, Config.option),
      redirectUri: optionalString(`${prefix}_REDIRECT_URI`),
      scopes: Rules.variable(`${prefix}_SCOPES`, Config.option),
      tokenBody: Config.nested(Config.literal("form", "json")().pipe(Config.option), `${prefix}_TOKEN_BODY`),
      pkce: Rules.boolean(`${prefix}_PKCE`, pkceByDefault(definition.pkce)),
      timeout: Rules.duration(`${prefix}_TIMEOUT`, app.oauth.httpTimeout, { min: "10 millis" }),
      endpoints: Config.all(names.map((name) => endpointUrl(endpointVariable(prefix, name), httpsRequired)))
    })
    const read = yield* Effect.either(config)
    const required = [`${prefix}_CLIENT_ID`, ...(definition.client === "confidential" ? [`${prefix}_CLIENT_SECRET`] : []), `${prefix}_REDIRECT_URI`]
    if (Either.isLeft(read)) return { _tag: "Misconfigured", problems: describeConfigError(read.left) } as const
    const c = read.right
    if (Option.isNone(c.clientId)) {
      return { _tag: "NotConfigured", problems: [`set ${required.join(", ")}`] } as const
    }

    const problems: Array<string> = []
    if (definition.client === "confidential" && Option.isNone(c.clientSecret)) problems.push(`${prefix}_CLIENT_SECRET: is required`)
    const pkce = pkceProblem(definition, c.pkce, app.deployEnv)
    if (pkce !== undefined) problems.push(`${prefix}_PKCE: ${pkce}`)
    const redirect = checkRedirectUri(definition.key, `${prefix}_REDIRECT_URI`, Option.getOrUndefined(c.redirectUri), originPolicyOf(app))
    if (Either.isLeft(redirect)) problems.push(redirect.left.message)
    if (problems.length > 0 || Either.isLeft(redirect)) return { _tag: "Misconfigured", problems } as const

    const urls: Record<string, string> = { ...definition.endpoints }
    const overridden = new Set<string>()
    names.forEach((name, i) => {
      const url = c.endpoints[i]
      if (url !== undefined && Option.isSome(url)) {
        urls[name] = url.value
        overridden.add(name)
      }
    })
    // A refresh endpoint is the token endpoint unless its own variable moves it: a proxy named
    // by <KEY>_TOKEN_URL must also receive the refresh token and the client secret.
    if (names.includes("refresh") && !overridden.has("refresh")) urls["refresh"] = urls["token"] ?? ""
    const settings: PlatformSettings = {
      clientId: c.clientId.value,
      clientSecret: definition.client === "confidential" ? c.clientSecret : Option.none(),
      // Sent byte for byte as configured: platforms compare redirect URIs exactly.
      redirectUri: Option.getOrElse(c.redirectUri, () => "").trim(),
      urls,
      overridden,
      scopes: Option.match(c.scopes, {
        onNone: () => definition.scopes,
        onSome: (raw) => raw.split(/[\s,]+/).filter((s) => s.length > 0)
      }),
      tokenBody: Option.getOrElse(c.tokenBody, () => definition.tokenBody),
      pkce: c.pkce,
      timeout: Duration.decode(c.timeout)
    }
    return { _tag: "Configured", settings } as const
  })
