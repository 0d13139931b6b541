import { Array as Arr, Config, ConfigError, Context, Data, Duration, Effect, Either, Layer, LogLevel, Option, Redacted } from "effect"
import { type DeployEnv, DeployEnvConfig, isDevelopment } from "./DeployEnv.js"
import { type DevSecretName, useDevSecrets } from "./devSecrets.js"
import * as Rules from "./rules.js"
import { apiKeysConfig, type EncryptionKey, encryptionKeysConfig, parseEncryptionKeys, weakApiKeys } from "./secrets.js"

export interface PoolSettings {
  readonly maxConnections: number
  readonly connectTimeout: Duration.Duration
  readonly idleTimeout: Duration.Duration
  readonly connectionTtl: Duration.Duration
  /** Every statement is abandoned after this (DB_STATEMENT_TIMEOUT): a stalled database answers 503, never hangs a caller. */
  readonly statementTimeout: Duration.Duration
}

export interface DatabaseSettings {
  /** A PostgreSQL server; None means the embedded PostgreSQL in `embeddedDir`. */
  readonly url: Option.Option<Redacted.Redacted>
  readonly embeddedDir: string
  /** EMBEDDED_DATABASE_DIR is unset: run as root, the directory may be placed where PostgreSQL's user can reach it. */
  readonly embeddedDirIsDefault: boolean
  readonly pool: PoolSettings
}

export interface Settings {
  readonly deployEnv: DeployEnv
  readonly frontendUrl: URL
  readonly allowedOrigins: ReadonlyArray<string>
  readonly host: string
  readonly port: number
  readonly database: DatabaseSettings
  readonly encryptionKeys: Arr.NonEmptyReadonlyArray<EncryptionKey>
  readonly apiKeys: ReadonlyArray<Redacted.Redacted>
  readonly tokenApiKeys: ReadonlyArray<Redacted.Redacted>
  readonly logLevel: LogLevel.LogLevel
  readonly logFormat: "pretty" | "json"
  readonly oauth: OAuthSettings
  readonly tokens: TokenSettings
  readonly statusCache: StatusCacheSettings
  readonly monitor: MonitorSettings
  readonly retention: RetentionSettings
  readonly server: ServerSettings
}

export interface RetentionSettings {
  /** Events older than this are deleted (EVENTS_RETENTION). */
  readonly events: Duration.Duration
  /** `refreshed` events older than this are deleted (REFRESH_EVENTS_RETENTION): one is written per refresh. */
  readonly refreshEvents: Duration.Duration
}

/** Bounds of the HTTP server on slow or idle clients. */
export interface ServerSettings {
  /** Time to receive a request's headers (HTTP_HEADERS_TIMEOUT). */
  readonly headersTimeout: Duration.Duration
  /** Time to receive a whole request, body included (HTTP_REQUEST_TIMEOUT); past it, 408. */
  readonly requestTimeout: Duration.Duration
  /** How long an idle kept-alive connection stays open (HTTP_KEEP_ALIVE_TIMEOUT). */
  readonly keepAliveTimeout: Duration.Duration
}

export interface TokenSettings {
  /** The fresh-token endpoint refreshes a token that expires sooner than this. */
  readonly minTtl: Duration.Duration
  /** How long a refresh may hold a connection before another process may take over. */
  readonly leaseDuration: Duration.Duration
  /**
   * How long the token endpoint waits for a due refresh while the stored token is still
   * valid (TOKEN_REFRESH_WAIT); past it the stored token is returned and the refresh goes on.
   */
  readonly refreshWait: Duration.Duration
  /** The longest a platform's Retry-After may put off a connection's next refresh attempt (RETRY_AFTER_MAX). */
  readonly retryAfterMax: Duration.Duration
}

export interface StatusCacheSettings {
  readonly ttl: Duration.Duration
  /** Entries kept per cache (all platforms of a user; one platform of a user). */
  readonly capacity: number
}

export interface MonitorSettings {
  readonly enabled: boolean
  /** Time between ticks. */
  readonly interval: Duration.Duration
  /** Refresh tokens that expire within this. */
  readonly refreshAhead: Duration.Duration
  /** Connections claimed per statement. */
  readonly batch: number
  /** Refreshes in flight at once per process. */
  readonly concurrency: number
  /** How long a refreshed token waits for others to be stored with it. */
  readonly storeLinger: Duration.Duration
  /** Warn this long before a token that cannot be refreshed expires. */
  readonly expirationWarning: Duration.Duration
  /** Validate tokens that do not expire this often. */
  readonly validateInterval: Duration.Duration
}

export interface OAuthSettings {
  /** The timeout of every call to a platform. */
  readonly httpTimeout: Duration.Duration
  /** Refuse production-looking redirect hosts under development too. */
  readonly strictEnvMatch: boolean
  /**
   * OAUTH_CONFIRMATION: "required" stores a callback's grant as pending until the application
   * confirms it for the user who completed the flow; "off" stores it for the state's user at once.
   */
  readonly confirmation: "required" | "off"
  /** Live authorisation requests kept per (user, platform) (OAUTH_MAX_PENDING); the oldest are dropped. */
  readonly maxPending: number
}

/** The configuration could not be used; one line per problem, each naming its variable. */
export class ConfigInvalid extends Data.TaggedError("ConfigInvalid")<{ readonly problems: ReadonlyArray<string> }> {
  override get message() {
    return this.problems.join("\n")
  }
}

const databaseUrlVariable = (name: string) =>
  Rules.secret(name, (c) =>
    Config.mapOrFail(c, (url) => {
      const rule = checkDatabaseUrl(Redacted.value(url))
      return rule === undefined ? Either.right(url) : Either.left(ConfigError.InvalidData([], rule))
    }))

/** DATABASE_URL, or the original service's PLATFORM_DATABASE_URL when it is unset. */
const databaseUrl = databaseUrlVariable("DATABASE_URL").pipe(
  Config.orElseIf({ if: ConfigError.isMissingDataOnly, orElse: () => databaseUrlVariable("PLATFORM_DATABASE_URL") }),
  Config.option
)

export const checkDatabaseUrl = (raw: string): string | undefined => {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return "must be a URL such as postgres://user:password@host:5432/database"
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") return "must start with postgres:// or postgresql://"
  if (url.hostname === "" && !url.searchParams.has("host")) return "must name a host"
  return undefined
}

/**
 * A rule across variables, checked in the same pass as every other so that one start
 * reports all problems; each of its messages names the variable itself.
 */
const outsideDevelopment = <A>(config: Config.Config<A>, check: (value: A) => string | ReadonlyArray<string> | undefined) =>
  Config.all([DeployEnvConfig, config]).pipe(
    Config.mapOrFail(([env, value]) => {
      const found = isDevelopment(env) ? undefined : check(value)
      const problems = (found === undefined ? [] : typeof found === "string" ? [found] : found).map((p) => ConfigError.InvalidData([], p))
      return Arr.isNonEmptyReadonlyArray(problems)
        ? Either.left(Arr.reduce(Arr.tailNonEmpty(problems), Arr.headNonEmpty(problems), ConfigError.And))
        : Either.right(value)
    })
  )

const raw = Config.all({
  deployEnv: DeployEnvConfig,
  frontendUrl: outsideDevelopment(Rules.httpUrl("FRONTEND_URL").pipe(Config.option), (url) =>
    Option.match(url, {
      onNone: () => "FRONTEND_URL: is required outside development",
      onSome: (u) => u.protocol === "https:" ? undefined : "FRONTEND_URL: must use https outside development"
    })),
  allowedOrigins: outsideDevelopment(Rules.origins("OAUTH_ALLOWED_ORIGINS"), (origins) => {
    const plain = origins.filter((origin) => origin.startsWith("http:"))
    return plain.length === 0 ? undefined : `OAUTH_ALLOWED_ORIGINS: must use https outside development (${plain.join(", ")})`
  }),
  host: Rules.variable("HOST", Config.option),
  port: Rules.integer("PORT", 8080, { min: 0, max: 65535 }),
  databaseUrl,
  embeddedDir: Rules.variable("EMBEDDED_DATABASE_DIR", Config.option),
  devSecretsFile: Rules.variable("DEV_SECRETS_FILE", Config.withDefault(".data/dev-secrets.json")),
  // Maxima keep durations within what Node's timers (24.8 days) and Dates can hold.
  pool: Config.all({
    maxConnections: Rules.integer("DB_POOL_MAX", 20, { min: 1, max: 1000 }),
    connectTimeout: Rules.duration("DB_CONNECT_TIMEOUT", "30 seconds", { min: "100 millis", max: "10 minutes" }),
    idleTimeout: Rules.duration("DB_IDLE_TIMEOUT", "30 seconds", { min: "1 second", max: "1 day" }),
    connectionTtl: Rules.duration("DB_CONNECTION_TTL", "3600 seconds", { min: "1 second", max: "7 days" }),
    statementTimeout: Rules.duration("DB_STATEMENT_TIMEOUT", "5 seconds", { min: "100 millis", max: "10 minutes" })
  }),
  encryptionKeys: outsideDevelopment(encryptionKeysConfig("TOKEN_ENCRYPTION_KEYS"), (keys) =>
    Option.isNone(keys) ? "TOKEN_ENCRYPTION_KEYS: is required outside development (kid:base64 of 32 random bytes)" : undefined),
  apiKeys: outsideDevelopment(
    Config.all({ apiKeys: apiKeysConfig("API_KEYS"), tokenApiKeys: apiKeysConfig("TOKEN_API_KEYS") }),
    (keys) =>
      keys.apiKeys.length + keys.tokenApiKeys.length === 0
        ? "API_KEYS: is required outside development"
        : [...weakApiKeys("API_KEYS", keys.apiKeys), ...weakApiKeys("TOKEN_API_KEYS", keys.tokenApiKeys)]
  ),
  oauth: Config.all({
    httpTimeout: Rules.duration("OAUTH_HTTP_TIMEOUT", "10 seconds", { min: "10 millis", max: "10 minutes" }),
    strictEnvMatch: Rules.boolean("STRICT_ENV_MATCH", false),
    confirmation: Rules.checked("OAUTH_CONFIRMATION", (raw): Either.Either<"required" | "off", string> => {
      const value = raw.trim().toLowerCase()
      return value === "required" || value === "off" ? Either.right(value) : Either.left("must be required or off")
    }).pipe(Config.withDefault<"required" | "off">("required")),
    maxPending: Rules.integer("OAUTH_MAX_PENDING", 10, { min: 1, max: 1000 })
  }),
  tokens: Config.all({
    minTtl: Rules.duration("ACCESS_TOKEN_MIN_TTL", "5 minutes", { max: "1 day" }),
    leaseDuration: Rules.duration("LEASE_DURATION", "2 minutes", { min: "1 second", max: "1 hour" }),
    refreshWait: Rules.duration("TOKEN_REFRESH_WAIT", "2 seconds", { max: "1 minute" }),
    retryAfterMax: Rules.duration("RETRY_AFTER_MAX", "1 hour", { min: "1 second", max: "1 day" })
  }),
  statusCache: Config.all({
    ttl: Rules.duration("STATUS_CACHE_TTL", "5 minutes", { max: "1 day" }),
    capacity: Rules.integer("STATUS_CACHE_CAPACITY", 100_000, { min: 1, max: 10_000_000 })
  }),
  monitor: Config.all({
    enabled: Rules.boolean("MONITOR_ENABLED", true),
    interval: Rules.duration("MONITOR_INTERVAL", "1 minute", { min: "1 second", max: "1 hour" }),
    refreshAhead: Rules.duration("REFRESH_AHEAD", "10 minutes", { min: "1 second", max: "1 day" }),
    batch: Rules.integer("MONITOR_BATCH", 500, { min: 1, max: 10_000 }),
    concurrency: Rules.integer("MONITOR_CONCURRENCY", 16, { min: 1, max: 1_000 }),
    storeLinger: Rules.duration("MONITOR_STORE_LINGER", "0 millis", { max: "1 second" }),
    expirationWarning: Rules.checked("EXPIRATION_WARNING_DAYS", Rules.integerIn(0, 365)).pipe(
      Config.map(Duration.days),
      Config.withDefault(Duration.days(7))
    ),
    validateInterval: Rules.duration("VALIDATE_INTERVAL", "24 hours", { min: "1 minute", max: "30 days" })
  }).pipe(
    Config.mapOrFail((monitor) =>
      Duration.greaterThan(monitor.refreshAhead, monitor.interval)
        ? Either.right(monitor)
        : Either.left(ConfigError.InvalidData(
          [],
          `REFRESH_AHEAD: must be longer than MONITOR_INTERVAL (${Duration.format(monitor.refreshAhead)} is not longer than ${
            Duration.format(monitor.interval)
          }), or tokens could expire between two ticks`
        ))
    )
  ),
  retention: Config.all({
    events: Rules.duration("EVENTS_RETENTION", "90 days", { min: "1 day", max: "3650 days" }),
    refreshEvents: Rules.duration("REFRESH_EVENTS_RETENTION", "7 days", { min: "1 hour", max: "3650 days" })
  }),
  server: Config.all({
    headersTimeout: Rules.duration("HTTP_HEADERS_TIMEOUT", "10 seconds", { min: "1 second", max: "5 minutes" }),
    requestTimeout: Rules.duration("HTTP_REQUEST_TIMEOUT", "30 seconds", { min: "1 second", max: "10 minutes" }),
    keepAliveTimeout: Rules.duration("HTTP_KEEP_ALIVE_TIMEOUT", "5 seconds", { min: "1 second", max: "10 minutes" })
  }).pipe(
    // node:http refuses to start otherwise: the headers are part of the request.
    Config.mapOrFail((server) =>
      Duration.lessThan(server.requestTimeout, server.headersTimeout)
        ? Either.left(ConfigError.InvalidData(
          [],
          `HTTP_REQUEST_TIMEOUT: must be at least HTTP_HEADERS_TIMEOUT (${Duration.format(server.requestTimeout)} is shorter than ${
            Duration.format(server.headersTimeout)
          })`
        ))
        : Either.right(server)
    )
  ),
  logLevel: Config.nested(Config.logLevel().pipe(Config.withDefault(LogLevel.Info)), "LOG_LEVEL"),
  logFormat: Config.nested(Config.literal("pretty", "json")().pipe(Config.option), "LOG_FORMAT")
})

/**
 * Turns a ConfigError tree into "VARIABLE: rule" lines. An `Or` comes from a variable read
 * with a fallback (an alias, a global default of a per-platform setting): when one side only
 * misses its variable, the other side's failure is the problem; when both miss, the first
 * name is the one to set.
 */
export const describeConfigError = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  switch (error._op) {
    case "Or": {
      const leftMissing = ConfigError.isMissingDataOnly(error.left)
      const rightMissing = ConfigError.isMissingDataOnly(error.right)
      if (leftMissing) return describeConfigError(rightMissing ? error.left : error.right)
      if (rightMissing) return describeConfigError(error.left)
      return Arr.dedupe([...describeConfigError(error.left), ...describeConfigError(error.right)])
    }
    case "And":
      return Arr.dedupe([...describeConfigError(error.left), ...describeConfigError(error.right)])
    case "MissingData":
      return [`${error.path.join(".")}: is required`]
    default:
      return [error.path.length === 0 ? error.message : `${error.path.join(".")}: ${error.message}`]
  }
}

const invalid = (problem: string) => new ConfigInvalid({ problems: [problem] })

/**
 * Development secrets from DEV_SECRETS_FILE, for those of `wanted` that are not configured,
 * announced in one line; a generated API key is printed only when it is first generated.
 */
const fromDevSecretsFile = (file: string, wanted: ReadonlyArray<DevSecretName>) =>
  Effect.gen(function*() {
    const secrets = yield* Either.mapLeft(useDevSecrets(file, wanted), (rule) => invalid(`DEV_SECRETS_FILE: ${rule}`))
    const where = `${wanted.join(" and ")} ${wanted.length > 1 ? "are" : "is"} not set: using the development secrets in ${secrets.path}`
    const apiKey = secrets.values.API_KEYS
    let note = secrets.generated.length > 0 ? " (generated now)" : ""
    if (apiKey !== undefined && secrets.generated.includes("API_KEYS")) note += `; API key, token scope included: ${Redacted.value(apiKey)}`
    else if (apiKey !== undefined) note += "; the API key is in that file"
    yield* Effect.logWarning(`${where}${note}`)
    return secrets
  })

/**
 * Reads and checks the whole configuration at once, so a bad start lists every problem.
 * Outside development, missing secrets are problems; in development they come from
 * DEV_SECRETS_FILE, generated there on first use. A command that serves no API
 * (`servesApi: false`) neither generates nor prints an API key.
 */
export const loadSettings = (options: { readonly servesApi: boolean }) =>
  Effect.gen(function*() {
    const c = yield* Effect.mapError(raw, (e) => new ConfigInvalid({ problems: describeConfigError(e) }))
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
      server: c.server
    }
    return settings
  })

/** The configuration of `serve`. */
export const load = loadSettings({ servesApi: true })

export class AppConfig extends Context.Tag("Integrations/AppConfig")<AppConfig, Settings>() {}

export const AppConfigLive = Layer.effect(AppConfig, load)

/** The configuration of the commands that serve no API (`monitor`, `migrate`). */
export const WorkerConfigLive = Layer.effect(AppConfig, loadSettings({ servesApi: false }))
