import { randomBytes } from "node:crypto"
import { Array as Arr, Config, ConfigError, Context, Data, Duration, Effect, Either, Layer, LogLevel, Option, Redacted } from "effect"
import { type DeployEnv, DeployEnvConfig, isDevelopment } from "./DeployEnv.js"
import * as Rules from "./rules.js"
import { apiKeysConfig, type EncryptionKey, encryptionKeysConfig } from "./secrets.js"

export interface PoolSettings {
  readonly maxConnections: number
  readonly connectTimeout: Duration.Duration
  readonly idleTimeout: Duration.Duration
  readonly connectionTtl: Duration.Duration
}

export interface DatabaseSettings {
  /** A PostgreSQL server; None means the embedded PostgreSQL in `embeddedDir`. */
  readonly url: Option.Option<Redacted.Redacted>
  readonly embeddedDir: string
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
}

export interface TokenSettings {
  /** The fresh-token endpoint refreshes a token that expires sooner than this. */
  readonly minTtl: Duration.Duration
  /** How long a refresh may hold a connection before another process may take over. */
  readonly leaseDuration: Duration.Duration
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
 * reports all problems; its message names the variable itself.
 */
const outsideDevelopment = <A>(config: Config.Config<A>, check: (value: A) => string | undefined) =>
  Config.all([DeployEnvConfig, config]).pipe(
    Config.mapOrFail(([env, value]) => {
      const problem = isDevelopment(env) ? undefined : check(value)
      return problem === undefined ? Either.right(value) : Either.left(ConfigError.InvalidData([], problem))
    })
  )

const raw = Config.all({
  deployEnv: DeployEnvConfig,
  frontendUrl: outsideDevelopment(Rules.httpUrl("FRONTEND_URL").pipe(Config.option), (url) =>
    Option.match(url, {
      onNone: () => "FRONTEND_URL: is required outside development",
      onSome: (u) => u.protocol === "https:" ? undefined : "FRONTEND_URL: must use https outside development"
    })),
  allowedOrigins: Rules.origins("OAUTH_ALLOWED_ORIGINS"),
  host: Rules.variable("HOST", Config.option),
  port: Rules.integer("PORT", 8080, { min: 0, max: 65535 }),
  databaseUrl,
  embeddedDir: Rules.variable("EMBEDDED_DATABASE_DIR", Config.withDefault(".data/pg")),
  pool: Config.all({
    maxConnections: Rules.integer("DB_POOL_MAX", 20, { min: 1, max: 1000 }),
    connectTimeout: Rules.duration("DB_CONNECT_TIMEOUT", "30 seconds", { min: "100 millis" }),
    idleTimeout: Rules.duration("DB_IDLE_TIMEOUT", "30 seconds", { min: "1 second" }),
    connectionTtl: Rules.duration("DB_CONNECTION_TTL", "3600 seconds", { min: "1 second" })
  }),
  encryptionKeys: outsideDevelopment(encryptionKeysConfig("TOKEN_ENCRYPTION_KEYS"), (keys) =>
    Option.isNone(keys) ? "TOKEN_ENCRYPTION_KEYS: is required outside development (kid:base64 of 32 random bytes)" : undefined),
  apiKeys: outsideDevelopment(
    Config.all({ apiKeys: apiKeysConfig("API_KEYS"), tokenApiKeys: apiKeysConfig("TOKEN_API_KEYS") }),
    (keys) => keys.apiKeys.length + keys.tokenApiKeys.length === 0 ? "API_KEYS: is required outside development" : undefined
  ),
  oauth: Config.all({
    httpTimeout: Rules.duration("OAUTH_HTTP_TIMEOUT", "10 seconds", { min: "10 millis" }),
    strictEnvMatch: Rules.boolean("STRICT_ENV_MATCH", false)
  }),
  tokens: Config.all({
    minTtl: Rules.duration("ACCESS_TOKEN_MIN_TTL", "5 minutes"),
    leaseDuration: Rules.duration("LEASE_DURATION", "2 minutes", { min: "1 second" })
  }),
  statusCache: Config.all({
    ttl: Rules.duration("STATUS_CACHE_TTL", "5 minutes"),
    capacity: Rules.integer("STATUS_CACHE_CAPACITY", 100_000, { min: 1, max: 10_000_000 })
  }),
  monitor: Config.all({
    enabled: Rules.boolean("MONITOR_ENABLED", true),
    interval: Rules.duration("MONITOR_INTERVAL", "1 minute", { min: "1 second" }),
    refreshAhead: Rules.duration("REFRESH_AHEAD", "10 minutes", { min: "1 second" }),
    batch: Rules.integer("MONITOR_BATCH", 500, { min: 1, max: 10_000 }),
    concurrency: Rules.integer("MONITOR_CONCURRENCY", 16, { min: 1, max: 1_000 }),
    expirationWarning: Rules.checked("EXPIRATION_WARNING_DAYS", Rules.integerIn(0, 365)).pipe(
      Config.map(Duration.days),
      Config.withDefault(Duration.days(7))
    ),
    validateInterval: Rules.duration("VALIDATE_INTERVAL", "24 hours", { min: "1 minute" })
  }),
  logLevel: Config.nested(Config.logLevel().pipe(Config.withDefault(LogLevel.Info)), "LOG_LEVEL"),
  logFormat: Config.nested(Config.literal("pretty", "json")().pipe(Config.option), "LOG_FORMAT")
})

/** Turns a ConfigError tree into "VARIABLE: rule" lines. */
export const describeConfigError = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  switch (error._op) {
    case "And":
    case "Or":
      return Arr.dedupe([...describeConfigError(error.left), ...describeConfigError(error.right)])
    case "MissingData":
      return [`${error.path.join(".")}: is required`]
    default:
      return [error.path.length === 0 ? error.message : `${error.path.join(".")}: ${error.message}`]
  }
}

const generatedApiKey = () => `dev_${randomBytes(24).toString("base64url")}`

/**
 * Reads and checks the whole configuration at once, so a bad start lists every problem.
 * Outside development, missing secrets are problems; in development they are generated
 * for this process only and announced once.
 */
export const load = Effect.gen(function*() {
  const c = yield* Effect.mapError(raw, (e) => new ConfigInvalid({ problems: describeConfigError(e) }))
  const dev = isDevelopment(c.deployEnv)
  const frontendUrl = Option.getOrElse(c.frontendUrl, () => new URL("http://localhost:3000"))

  let encryptionKeys = Option.getOrUndefined(Option.flatMap(c.encryptionKeys, (keys) => Arr.isNonEmptyReadonlyArray(keys) ? Option.some(keys) : Option.none()))
  if (encryptionKeys === undefined) {
    encryptionKeys = [{ id: "ephemeral", key: Redacted.make(new Uint8Array(randomBytes(32))) }]
    yield* Effect.logWarning(
      "TOKEN_ENCRYPTION_KEYS is not set: tokens are encrypted with a key generated for this process only, so connections stored now will need re-authorisation after a restart (development only)"
    )
  }
  let { apiKeys, tokenApiKeys } = c.apiKeys
  if (apiKeys.length === 0 && tokenApiKeys.length === 0) {
    const key = generatedApiKey()
    apiKeys = [Redacted.make(key)]
    tokenApiKeys = apiKeys
    yield* Effect.logWarning(
      `API_KEYS is not set: generated an API key for this process (development only, token scope included): ${key}`
    )
  }

  const settings: Settings = {
    deployEnv: c.deployEnv,
    frontendUrl,
    allowedOrigins: c.allowedOrigins,
    host: Option.getOrElse(c.host, () => (dev ? "127.0.0.1" : "0.0.0.0")),
    port: c.port,
    database: { url: c.databaseUrl, embeddedDir: c.embeddedDir, pool: c.pool },
    encryptionKeys,
    apiKeys,
    tokenApiKeys,
    logLevel: c.logLevel,
    logFormat: Option.getOrElse(c.logFormat, () => (dev ? "pretty" : "json")),
    oauth: c.oauth,
    tokens: c.tokens,
    statusCache: c.statusCache,
    monitor: c.monitor
  }
  return settings
})

export class AppConfig extends Context.Tag("Integrations/AppConfig")<AppConfig, Settings>() {}

export const AppConfigLive = Layer.effect(AppConfig, load)
