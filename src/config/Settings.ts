import type { Array as Arr, Duration, LogLevel, Option, Redacted } from "effect"
import type { DeployEnv } from "./DeployEnv.js"
import type { EncryptionKey } from "./secrets.js"
import type { WebhookEndpoint } from "./webhooks.js"

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
  readonly webhooks: WebhookSettings
  readonly connect: ConnectSettings
}

/** The hosted connect page and its sessions. */
export interface ConnectSettings {
  /** How long a connect session stays valid (CONNECT_SESSION_TTL). */
  readonly sessionTtl: Duration.Duration
  /** Where the connect page is reached (CONNECT_PAGE_URL; by default FRONTEND_URL's /connect, proxied like the callbacks). */
  readonly pageUrl: URL
}

/** Connection events pushed to the application (see src/webhooks/). */
export interface WebhookSettings {
  /** Whether this process runs a delivery worker (WEBHOOKS_ENABLED). */
  readonly enabled: boolean
  /** WEBHOOK_URL and WEBHOOK_<NAME>_URL, with their secrets and event filters. */
  readonly endpoints: ReadonlyArray<WebhookEndpoint>
  /** The time an endpoint has to answer one delivery attempt (WEBHOOK_TIMEOUT). */
  readonly timeout: Duration.Duration
  /** Deliveries in flight at once per endpoint and process (WEBHOOK_CONCURRENCY). */
  readonly concurrency: number
  /** How long transient refresh failures last before connection.refresh_failing is sent (WEBHOOK_FAILING_AFTER). */
  readonly failingAfter: Duration.Duration
  /** Delivered rows are kept this long (WEBHOOK_RETENTION). */
  readonly retention: Duration.Duration
  /** Failed rows are kept this long (WEBHOOK_FAILED_RETENTION). */
  readonly failedRetention: Duration.Duration
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
