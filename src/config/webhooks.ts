import { Config, Effect, Either, HashSet, Option, Redacted } from "effect"
import { isWebhookEventType, WEBHOOK_EVENT_TYPES, type WebhookEventType } from "../domain/webhookEvents.js"
import { DeployEnvConfig, isDevelopment } from "./DeployEnv.js"
import type { DeployEnv } from "./DeployEnv.js"

/** Where the service pushes connection events, signed with every one of its secrets. */
export interface WebhookEndpoint {
  /** "default" for WEBHOOK_URL; the NAME of WEBHOOK_<NAME>_URL otherwise, in lower case. */
  readonly name: string
  readonly url: URL
  readonly secrets: ReadonlyArray<Redacted.Redacted<Uint8Array>>
  /** The event types sent there; null: all of them. */
  readonly events: ReadonlySet<WebhookEventType> | null
}

const PREFIX = "whsec_"

/** A signing secret as the specification writes it: `whsec_` and the key in base64, 24 to 64 bytes. */
export const parseWebhookSecret = (text: string): Either.Either<Redacted.Redacted<Uint8Array>, string> => {
  const trimmed = text.trim()
  if (!trimmed.startsWith(PREFIX)) return Either.left("a secret is whsec_ followed by base64 (the Standard Webhooks form)")
  const encoded = trimmed.slice(PREFIX.length)
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) return Either.left("the part after whsec_ must be base64")
  const key = Buffer.from(encoded, "base64")
  if (key.length < 24 || key.length > 64) return Either.left(`the key must be 24 to 64 bytes (this one is ${key.length})`)
  return Either.right(Redacted.make(new Uint8Array(key)))
}

const NAMED = /^WEBHOOK_([A-Z0-9]+)_(URL|SECRETS|EVENTS)$/

/**
 * The endpoints the environment configures: WEBHOOK_URL, WEBHOOK_SECRETS and WEBHOOK_EVENTS,
 * and as many more as WEBHOOK_<NAME>_URL, _SECRETS and _EVENTS name. Every problem is given
 * as one line naming its variable: a URL without secrets (or secrets without a URL), a
 * malformed secret, an unknown event type, http outside development.
 */
export const parseWebhookEndpoints = (
  env: ReadonlyMap<string, string>,
  deployEnv: DeployEnv
): Either.Either<ReadonlyArray<WebhookEndpoint>, ReadonlyArray<string>> => {
  const names = new Set<string>()
  if (env.has("WEBHOOK_URL") || env.has("WEBHOOK_SECRETS") || env.has("WEBHOOK_EVENTS")) names.add("")
  for (const key of env.keys()) {
    const name = NAMED.exec(key)?.[1]
    if (name !== undefined) names.add(name)
  }
  const problems: Array<string> = []
  const endpoints: Array<WebhookEndpoint> = []
  for (const name of [...names].sort()) {
    const variable = (suffix: string) => (name === "" ? `WEBHOOK_${suffix}` : `WEBHOOK_${name}_${suffix}`)
    const rawUrl = env.get(variable("URL"))
    const rawSecrets = env.get(variable("SECRETS"))
    if (rawUrl === undefined) {
      problems.push(`${variable("URL")}: is required when ${rawSecrets === undefined ? variable("EVENTS") : variable("SECRETS")} is set`)
      continue
    }
    let url: URL | undefined
    try {
      url = new URL(rawUrl.trim())
    } catch {
      problems.push(`${variable("URL")}: must be an absolute URL such as https://app.example.com/webhooks/oauth`)
    }
    if (url !== undefined && url.protocol !== "https:" && !(url.protocol === "http:" && isDevelopment(deployEnv))) {
      problems.push(`${variable("URL")}: must be https${isDevelopment(deployEnv) ? " or http" : " outside development"}`)
    }
    const secrets: Array<Redacted.Redacted<Uint8Array>> = []
    if (rawSecrets === undefined) problems.push(`${variable("SECRETS")}: is required when ${variable("URL")} is set (whsec_ secrets, comma separated)`)
    else {
      rawSecrets.split(",").map((s) => s.trim()).filter((s) => s !== "").forEach((text, i) =>
        Either.match(parseWebhookSecret(text), {
          onLeft: (why) => problems.push(`${variable("SECRETS")}: secret ${i + 1}: ${why}`),
          onRight: (secret) => secrets.push(secret)
        }))
      if (secrets.length === 0 && !problems.some((p) => p.startsWith(`${variable("SECRETS")}:`))) problems.push(`${variable("SECRETS")}: names no secret`)
    }
    const rawEvents = env.get(variable("EVENTS"))
    let events: Set<WebhookEventType> | null = null
    if (rawEvents !== undefined) {
      events = new Set()
      for (const type of rawEvents.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
        if (isWebhookEventType(type)) events.add(type)
        else problems.push(`${variable("EVENTS")}: unknown event type ${type} (known: ${WEBHOOK_EVENT_TYPES.join(", ")})`)
      }
    }
    if (url !== undefined) endpoints.push({ name: name === "" ? "default" : name.toLowerCase(), url, secrets, events })
  }
  return problems.length > 0 ? Either.left(problems) : Either.right(endpoints)
}

/**
 * The endpoints of the configuration in effect: every WEBHOOK_* variable it holds, parsed by
 * parseWebhookEndpoints; the problems as lines. DEPLOY_ENV is read here too (its own
 * problem, if any, is reported with the other variables).
 */
export const readWebhookEndpoints: Effect.Effect<ReadonlyArray<WebhookEndpoint>, ReadonlyArray<string>> = Effect.gen(function*() {
  const keys = yield* Effect.configProviderWith((provider) => provider.flattened.enumerateChildren([])).pipe(
    Effect.orElseSucceed(() => HashSet.empty<string>())
  )
  const names = [...HashSet.values(keys)].filter((key) => key.startsWith("WEBHOOK_")).sort()
  const env = new Map<string, string>()
  for (const name of names) {
    const value = yield* Effect.option(Config.string(name))
    if (Option.isSome(value)) env.set(name, value.value)
  }
  const deployEnv = yield* Effect.orElseSucceed(DeployEnvConfig, (): DeployEnv => "development")
  return yield* parseWebhookEndpoints(env, deployEnv)
})
