import { Array as Arr, Context, Effect, Either, Layer, Option, Redacted } from "effect"
import { ConfigInvalid, describeConfigError, invalid } from "./ConfigInvalid.js"
import { isDevelopment } from "./DeployEnv.js"
import { type DevSecretName, fromDevSecretsFile } from "./devSecrets.js"
import { parseEncryptionKeys } from "./secrets.js"
import type { Settings } from "./Settings.js"
import { raw } from "./variables.js"
import { readWebhookEndpoints } from "./webhooks.js"

/**
 * Reads and checks the whole configuration at once, so a bad start lists every problem.
 * Outside development, missing secrets are problems; in development they come from
 * DEV_SECRETS_FILE, generated there on first use. A command that serves no API
 * (`servesApi: false`) neither generates nor prints an API key.
 */
export const loadSettings = (options: { readonly servesApi: boolean }) =>
  Effect.gen(function*() {
    // Both read before either fails, so that one start lists every problem.
    const [read, endpoints] = yield* Effect.all([Effect.either(raw), Effect.either(readWebhookEndpoints)])
    const problems = [
      ...(Either.isLeft(read) ? describeConfigError(read.left) : []),
      ...(Either.isLeft(endpoints) ? endpoints.left : [])
    ]
    if (Either.isLeft(read) || Either.isLeft(endpoints)) return yield* new ConfigInvalid({ problems })
    const c = read.right
    const dev = isDevelopment(c.deployEnv)
    const frontendUrl = Option.getOrElse(c.frontendUrl, () => new URL("http://localhost:3000"))

    // Outside development `raw` has refused missing secrets, so only development wants any here.
    const configuredKeys = Option.getOrUndefined(Option.filter(c.encryptionKeys, Arr.isNonEmptyReadonlyArray))
    let { apiKeys, tokenApiKeys } = c.apiKeys
    const wanted: Array<DevSecretName> = []
    if (configuredKeys === undefined) wanted.push("TOKEN_ENCRYPTION_KEYS")
    if (options.servesApi && apiKeys.length === 0 && tokenApiKeys.length === 0) wanted.push("API_KEYS")
    const file = wanted.length > 0 ? yield* fromDevSecretsFile(c.devSecretsFile, wanted) : undefined

    let encryptionKeys = configuredKeys
    const storedKeys = file?.values.TOKEN_ENCRYPTION_KEYS
    if (storedKeys !== undefined) {
      const parsed = parseEncryptionKeys(Redacted.value(storedKeys))
      if (Either.isLeft(parsed) || !Arr.isNonEmptyReadonlyArray(parsed.right)) {
        return yield* invalid(`DEV_SECRETS_FILE: its TOKEN_ENCRYPTION_KEYS is invalid: fix it or delete the file (${file?.path})`)
      }
      encryptionKeys = parsed.right
    }
    if (encryptionKeys === undefined) return yield* invalid("TOKEN_ENCRYPTION_KEYS: is required outside development")
    const storedApiKey = file?.values.API_KEYS
    if (storedApiKey !== undefined) {
      apiKeys = [storedApiKey]
      tokenApiKeys = apiKeys
    }

    const settings: Settings = {
      deployEnv: c.deployEnv,
      frontendUrl,
      allowedOrigins: c.allowedOrigins,
      host: Option.getOrElse(c.host, () => (dev ? "127.0.0.1" : "0.0.0.0")),
      port: c.port,
      database: {
        url: c.databaseUrl,
        embeddedDir: Option.getOrElse(c.embeddedDir, () => ".data/pg"),
        embeddedDirIsDefault: Option.isNone(c.embeddedDir),
        pool: c.pool
      },
      encryptionKeys,
      apiKeys,
      tokenApiKeys,
      logLevel: c.logLevel,
      logFormat: Option.getOrElse(c.logFormat, () => (dev ? "pretty" : "json")),
      oauth: c.oauth,
      tokens: c.tokens,
      statusCache: c.statusCache,
      monitor: c.monitor,
      retention: c.retention,
      server: c.server,
      webhooks: { ...c.webhooks, endpoints: endpoints.right },
      connect: {
        sessionTtl: c.connect.sessionTtl,
        pageUrl: Option.getOrElse(c.connect.pageUrl, () => new URL("/connect", frontendUrl))
      }
    }
    return settings
  })

/** The configuration of `serve`. */
export const load = loadSettings({ servesApi: true })

export class AppConfig extends Context.Tag("Integrations/AppConfig")<AppConfig, Settings>() {}

export const AppConfigLive = Layer.effect(AppConfig, load)

/** The configuration of the commands that serve no API (`monitor`, `migrate`). */
export const WorkerConfigLive = Layer.effect(AppConfig, loadSettings({ servesApi: false }))
