import { randomBytes } from "node:crypto"
import { Duration, Layer, LogLevel, Option, Redacted } from "effect"
import { AppConfig } from "../../src/config/AppConfig.js"
import type { Settings } from "../../src/config/Settings.js"
import type { EncryptionKey } from "../../src/config/secrets.js"

export const randomKey = (id: string): EncryptionKey => ({ id, key: Redacted.make(new Uint8Array(randomBytes(32))) })

/** One key for every instance of a test run: replicas share TOKEN_ENCRYPTION_KEYS. */
const sharedKey = randomKey("k1")

export const testSettings = (overrides: Partial<Settings> = {}): Settings => ({
  deployEnv: "development",
  frontendUrl: new URL("https://app.example.com"),
  allowedOrigins: [],
  host: "127.0.0.1",
  port: 0,
  database: {
    url: Option.none(),
    embeddedDir: ".data/test",
    embeddedDirIsDefault: false,
    pool: {
      maxConnections: 10,
      connectTimeout: Duration.seconds(10),
      idleTimeout: Duration.seconds(30),
      connectionTtl: Duration.hours(1),
      statementTimeout: Duration.seconds(5)
    }
  },
  encryptionKeys: [sharedKey],
  apiKeys: [Redacted.make("test-api-key-0123456789")],
  tokenApiKeys: [Redacted.make("test-token-key-0123456789")],
  logLevel: LogLevel.Info,
  logFormat: "pretty",
  oauth: { httpTimeout: Duration.seconds(10), strictEnvMatch: false, confirmation: "required", maxPending: 10 },
  tokens: { minTtl: Duration.minutes(5), leaseDuration: Duration.minutes(2), refreshWait: Duration.seconds(2), retryAfterMax: Duration.hours(1) },
  statusCache: { ttl: Duration.minutes(5), capacity: 10_000 },
  monitor: {
    enabled: false,
    interval: Duration.minutes(1),
    refreshAhead: Duration.minutes(10),
    batch: 500,
    concurrency: 16,
    // No waiting for others: tests that drive the clock store each result at once.
    storeLinger: Duration.zero,
    expirationWarning: Duration.days(7),
    validateInterval: Duration.hours(24)
  },
  retention: { events: Duration.days(90), refreshEvents: Duration.days(7) },
  server: { headersTimeout: Duration.seconds(10), requestTimeout: Duration.seconds(30), keepAliveTimeout: Duration.seconds(5) },
  connect: { sessionTtl: Duration.minutes(30), pageUrl: new URL("https://app.example.com/connect") },
  webhooks: {
    enabled: false,
    endpoints: [],
    timeout: Duration.seconds(10),
    concurrency: 16,
    failingAfter: Duration.hours(1),
    retention: Duration.days(7),
    failedRetention: Duration.days(30)
  },
  ...overrides
})

export const testConfig = (overrides: Partial<Settings> = {}) => Layer.succeed(AppConfig, testSettings(overrides))
