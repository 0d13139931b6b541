import { Array as Arr, Config, ConfigError, Duration, Either, LogLevel, Option, Redacted } from "effect"
import { DeployEnvConfig, isDevelopment } from "./DeployEnv.js"
import * as Rules from "./rules.js"
import { apiKeysConfig, encryptionKeysConfig, weakApiKeys } from "./secrets.js"
import { tracingConfig } from "./tracing.js"

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

const LOG_LEVELS: Record<string, LogLevel.LogLevel> = {
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warn: LogLevel.Warning,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  fatal: LogLevel.Fatal,
  all: LogLevel.All,
  off: LogLevel.None,
  none: LogLevel.None
}

/** LOG_LEVEL, case-insensitive; `warning` and `none` are accepted for `warn` and `off`. */
const parseLogLevel = (raw: string): Either.Either<LogLevel.LogLevel, string> => {
  const level = LOG_LEVELS[raw.trim().toLowerCase()]
  return level === undefined ? Either.left("must be one of trace, debug, info, warn, error, fatal, all, off") : Either.right(level)
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

/**
 * Read and checked in one pass, so that one start reports every problem; `loadSettings`
 * fills in what development may leave unset.
 */
export const raw = Config.all({
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
  connect: Config.all({
    sessionTtl: Rules.duration("CONNECT_SESSION_TTL", "30 minutes", { min: "1 minute", max: "1 day" }),
    pageUrl: Rules.httpUrl("CONNECT_PAGE_URL").pipe(Config.option)
  }),
  webhooks: Config.all({
    enabled: Rules.boolean("WEBHOOKS_ENABLED", true),
    timeout: Rules.duration("WEBHOOK_TIMEOUT", "10 seconds", { min: "100 millis", max: "5 minutes" }),
    concurrency: Rules.integer("WEBHOOK_CONCURRENCY", 16, { min: 1, max: 1_000 }),
    failingAfter: Rules.duration("WEBHOOK_FAILING_AFTER", "1 hour", { min: "1 minute", max: "30 days" }),
    retention: Rules.duration("WEBHOOK_RETENTION", "7 days", { min: "1 hour", max: "3650 days" }),
    failedRetention: Rules.duration("WEBHOOK_FAILED_RETENTION", "30 days", { min: "1 hour", max: "3650 days" })
  }),
  // Read here for its problems to be listed with the others; the tracer reads it itself (main.ts).
  tracing: tracingConfig,
  logLevel: Rules.checked("LOG_LEVEL", parseLogLevel).pipe(Config.withDefault(LogLevel.Info)),
  logFormat: Rules.checked("LOG_FORMAT", (raw): Either.Either<"pretty" | "json", string> => {
    const value = raw.trim().toLowerCase()
    return value === "pretty" || value === "json" ? Either.right(value) : Either.left("must be pretty or json")
  }).pipe(Config.option)
})
