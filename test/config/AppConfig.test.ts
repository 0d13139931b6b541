import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Config, ConfigProvider, Duration, Effect, Logger, LogLevel, Option, Redacted } from "effect"
import { load } from "../../src/config/AppConfig.js"
import { type ConfigInvalid, describeConfigError } from "../../src/config/ConfigInvalid.js"
import type { Settings } from "../../src/config/Settings.js"
import * as Rules from "../../src/config/rules.js"

const key32 = (fill: number) => Buffer.alloc(32, fill).toString("base64")
const productionBase = {
  DEPLOY_ENV: "production",
  FRONTEND_URL: "https://app.example.com",
  TOKEN_ENCRYPTION_KEYS: `k1:${key32(1)}`,
  // 32 random bytes in base64url: strong enough outside development.
  API_KEYS: "J1SeO0IC8uY8OYvdccPFIO3I9KOeiDBqVcWKsWsajU4"
}

const captured: Array<string> = []
const captureLogs = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ message }) => captured.push(String(message)))
)

const secretsDir = mkdtempSync(join(tmpdir(), "oi-config-"))
afterAll(() => rmSync(secretsDir, { recursive: true, force: true }))

/** Development secrets go to a fresh temporary file, never to the checkout's .data. */
const withEnv = (env: Record<string, string>) =>
  load.pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({
      DEV_SECRETS_FILE: join(secretsDir, `${randomUUID()}.json`),
      ...env
    })))),
    Effect.provide(captureLogs)
  )

const problemsOf = (env: Record<string, string>) =>
  Effect.map(Effect.flip(withEnv(env)), (e: ConfigInvalid) => e.problems)

describe("configuration", () => {
  it.effect("LOG_LEVEL and LOG_FORMAT: the values the docs give, and problems that name the variable and list what is allowed", () =>
    Effect.gen(function*() {
      expect((yield* withEnv({ LOG_LEVEL: "warn", LOG_FORMAT: "json" })).logLevel).toBe(LogLevel.Warning)
      expect((yield* withEnv({ LOG_LEVEL: "OFF" })).logLevel).toBe(LogLevel.None)
      expect((yield* withEnv({ LOG_LEVEL: "warning" })).logLevel).toBe(LogLevel.Warning)
      const problems = yield* problemsOf({ LOG_LEVEL: "loud", LOG_FORMAT: "xml" })
      expect(problems).toContain("LOG_LEVEL: must be one of trace, debug, info, warn, error, fatal, all, off")
      expect(problems).toContain("LOG_FORMAT: must be pretty or json")
    }))

  it.effect("webhook endpoints: read with the rest, their problems listed with every other in one start", () =>
    Effect.gen(function*() {
      const secret = `whsec_${Buffer.alloc(32, 7).toString("base64")}`
      const settings = yield* withEnv({
        WEBHOOK_URL: "http://127.0.0.1:9000/hooks",
        WEBHOOK_SECRETS: secret,
        WEBHOOK_OPS_URL: "https://ops.example.com/in",
        WEBHOOK_OPS_SECRETS: secret,
        WEBHOOK_OPS_EVENTS: "connection.needs_reauth",
        WEBHOOK_TIMEOUT: "3s",
        WEBHOOKS_ENABLED: "false"
      })
      expect(settings.webhooks.endpoints.map((e) => [e.name, e.url.href, e.events === null ? null : [...e.events]])).toEqual([
        ["default", "http://127.0.0.1:9000/hooks", null],
        ["ops", "https://ops.example.com/in", ["connection.needs_reauth"]]
      ])
      expect(settings.webhooks).toMatchObject({ enabled: false, concurrency: 16 })
      expect(Duration.toMillis(settings.webhooks.timeout)).toBe(3000)
      expect(Duration.toMillis(settings.webhooks.failingAfter)).toBe(3_600_000)

      const problems = yield* problemsOf({
        PORT: "not-a-port",
        WEBHOOK_URL: "https://app.example.com/hooks",
        WEBHOOK_BILLING_URL: "https://billing.example.com/hooks",
        WEBHOOK_BILLING_SECRETS: "whsec_not base64",
        WEBHOOK_BILLING_EVENTS: "connection.exploded"
      })
      expect(problems.some((p) => p.startsWith("PORT:"))).toBe(true)
      expect(problems).toContain("WEBHOOK_SECRETS: is required when WEBHOOK_URL is set (whsec_ secrets, comma separated)")
      expect(problems.some((p) => p.startsWith("WEBHOOK_BILLING_SECRETS: secret 1:"))).toBe(true)
      expect(problems.some((p) => p.startsWith("WEBHOOK_BILLING_EVENTS: unknown event type connection.exploded"))).toBe(true)
    }))

  it.effect("starts in development with nothing set, taking its secrets from the development secrets file in one announced line", () =>
    Effect.gen(function*() {
      captured.length = 0
      const settings: Settings = yield* withEnv({})
      expect(settings.deployEnv).toBe("development")
      expect(settings.port).toBe(8080)
      expect(Option.isNone(settings.database.url)).toBe(true)
      expect(settings.database.embeddedDir).toBe(".data/pg")
      expect(settings.encryptionKeys).toHaveLength(1)
      expect(settings.apiKeys).toHaveLength(1)
      expect(captured).toHaveLength(1)
      expect(captured[0]).toMatch(/^TOKEN_ENCRYPTION_KEYS and API_KEYS are not set: using the development secrets in \/.*\.json \(generated now\)/)
    }))

  it.effect("accepts the DEPLOY_ENV aliases", () =>
    Effect.gen(function*() {
      for (const [alias, env] of [["dev", "development"], ["local", "development"], ["stage", "staging"], ["prod", "production"], ["PRODUCTION", "production"]] as const) {
        const settings = yield* withEnv({ ...productionBase, DEPLOY_ENV: alias })
        expect(settings.deployEnv).toBe(env)
      }
    }))

  it.effect("refuses an unknown DEPLOY_ENV, naming the variable and the rule", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({ DEPLOY_ENV: "qa" })
      expect(problems).toEqual(["DEPLOY_ENV: must be one of development, staging, production (dev, local, stage, prod accepted)"])
    }))

  it.effect("in production refuses to start without an encryption key or an API key", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({ DEPLOY_ENV: "production", FRONTEND_URL: "https://app.example.com" })
      expect(problems).toHaveLength(2)
      expect(problems[0]).toMatch(/^TOKEN_ENCRYPTION_KEYS: is required outside development/)
      expect(problems[1]).toMatch(/^API_KEYS: is required outside development/)
    }))

  it.effect("in staging refuses to start without an encryption key or an API key, like production", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({ DEPLOY_ENV: "staging", FRONTEND_URL: "https://app.example.com" })
      expect(problems).toEqual([
        "TOKEN_ENCRYPTION_KEYS: is required outside development (kid:base64 of 32 random bytes)",
        "API_KEYS: is required outside development"
      ])
    }))

  it.effect("lists every problem at once, one line each", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        PORT: "http",
        DATABASE_URL: "mysql://db/x",
        TOKEN_ENCRYPTION_KEYS: "k1:short",
        DB_POOL_MAX: "0",
        DB_CONNECT_TIMEOUT: "soon"
      })
      expect(problems).toEqual([
        "PORT: must be an integer from 0 to 65535",
        "DATABASE_URL: must start with postgres:// or postgresql://",
        "DB_POOL_MAX: must be an integer from 1 to 1000",
        "DB_CONNECT_TIMEOUT: must be a duration such as 30s, 5m, 1h or a number of seconds",
        "TOKEN_ENCRYPTION_KEYS: key \"k1\" is not valid base64"
      ])
    }))

  it.effect("reports rules across variables in the same pass as the others", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({ DEPLOY_ENV: "production", PORT: "-1", FRONTEND_URL: "http://app.example.com" })
      expect(problems).toEqual([
        "FRONTEND_URL: must use https outside development",
        "PORT: must be an integer from 0 to 65535",
        "TOKEN_ENCRYPTION_KEYS: is required outside development (kid:base64 of 32 random bytes)",
        "API_KEYS: is required outside development"
      ])
    }))

  it.effect("reads DATABASE_URL, or PLATFORM_DATABASE_URL as its alias, as a secret", () =>
    Effect.gen(function*() {
      const direct = yield* withEnv({ DATABASE_URL: "postgres://u:pw@db:5432/app" })
      const alias = yield* withEnv({ PLATFORM_DATABASE_URL: "postgresql://u:pw@db/app" })
      expect(Option.map(direct.database.url, Redacted.value)).toEqual(Option.some("postgres://u:pw@db:5432/app"))
      expect(Option.map(alias.database.url, Redacted.value)).toEqual(Option.some("postgresql://u:pw@db/app"))
      expect(String(direct.database.url)).not.toContain("pw")
    }))

  it.effect("reports only the real problem of an invalid PLATFORM_DATABASE_URL, not a missing DATABASE_URL", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({ PLATFORM_DATABASE_URL: "mysql://u:pw@db/app" })
      expect(problems).toEqual(["PLATFORM_DATABASE_URL: must start with postgres:// or postgresql://"])
    }))

  it.effect("refuses a DATABASE_URL without a host", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({ DATABASE_URL: "postgres:///app" })
      expect(problems).toEqual(["DATABASE_URL: must name a host"])
    }))

  it.effect("reports a variable read with a fallback by the fallback's problem, or by its own name when both are missing", () =>
    Effect.gen(function*() {
      const withFallback = Rules.checked("GSC_RETRY_MAX", Rules.integerIn(0, 20)).pipe(
        Config.orElse(() => Rules.checked("RETRY_MAX", Rules.integerIn(0, 20)))
      )
      const problems = (env: Record<string, string>) =>
        Effect.flip(Effect.withConfigProvider(withFallback, ConfigProvider.fromMap(new Map(Object.entries(env))))).pipe(
          Effect.map(describeConfigError)
        )
      expect(yield* problems({ RETRY_MAX: "many" })).toEqual(["RETRY_MAX: must be an integer from 0 to 20"])
      expect(yield* problems({})).toEqual(["GSC_RETRY_MAX: is required"])
    }))

  it.effect("refuses a malformed DATABASE_URL without echoing it", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({ DATABASE_URL: "not a url with secret-pw" })
      expect(problems).toEqual(["DATABASE_URL: must be a URL such as postgres://user:password@host:5432/database"])
    }))

  it.effect("checks encryption keys: base64, 32 bytes, key id, duplicates, never echoing a key", () =>
    Effect.gen(function*() {
      const cases: Array<[string, string]> = [
        [`k1:${Buffer.alloc(16, 1).toString("base64")}`, "TOKEN_ENCRYPTION_KEYS: key \"k1\" must decode to 32 bytes (AES-256), got 16"],
        ["k1:***notbase64***", "TOKEN_ENCRYPTION_KEYS: key \"k1\" is not valid base64"],
        [key32(1), "TOKEN_ENCRYPTION_KEYS: entry 1 must be kid:base64key"],
        [`bad id:${key32(1)}`, "TOKEN_ENCRYPTION_KEYS: entry 1: key id must be 1-32 characters of A-Z a-z 0-9 _ . -"],
        [`k1:${key32(1)},k1:${key32(2)}`, "TOKEN_ENCRYPTION_KEYS: key id \"k1\" appears more than once"]
      ]
      for (const [value, expected] of cases) {
        const problems = yield* problemsOf({ TOKEN_ENCRYPTION_KEYS: value })
        expect(problems).toEqual([expected])
        expect(problems.join()).not.toContain(key32(1))
      }
    }))

  it.effect("uses the first encryption key to encrypt and keeps the others for decryption", () =>
    Effect.gen(function*() {
      const settings = yield* withEnv({ TOKEN_ENCRYPTION_KEYS: `new:${key32(2)}, old:${key32(1)}` })
      expect(settings.encryptionKeys.map((k) => k.id)).toEqual(["new", "old"])
      expect(Buffer.from(Redacted.value(settings.encryptionKeys[0].key))).toEqual(Buffer.alloc(32, 2))
    }))

  it.effect("refuses API keys shorter than 16 characters without printing them", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({ API_KEYS: "0123456789abcdef0123,tiny-key" })
      expect(problems).toEqual(["API_KEYS: entry 2 is shorter than 16 characters"])
    }))

  it.effect("never prints a configured secret", () =>
    Effect.gen(function*() {
      captured.length = 0
      yield* withEnv({ API_KEYS: "configured-key-0123456789", TOKEN_ENCRYPTION_KEYS: `k1:${key32(7)}` })
      expect(captured.join("\n")).not.toContain("configured-key-0123456789")
      expect(captured.join("\n")).not.toContain(key32(7))
      expect(captured).toEqual([])
    }))

  it.effect("requires FRONTEND_URL over https outside development", () =>
    Effect.gen(function*() {
      const missing = yield* problemsOf({ ...productionBase, FRONTEND_URL: "" })
      expect(missing).toEqual(["FRONTEND_URL: must be an absolute http(s) URL"])
      const { FRONTEND_URL: _, ...withoutFrontend } = productionBase
      expect(yield* problemsOf(withoutFrontend)).toEqual(["FRONTEND_URL: is required outside development"])
      expect(yield* problemsOf({ ...productionBase, FRONTEND_URL: "http://app.example.com" })).toEqual([
        "FRONTEND_URL: must use https outside development"
      ])
    }))

  it.effect("reads OAUTH_ALLOWED_ORIGINS as origins only", () =>
    Effect.gen(function*() {
      const settings = yield* withEnv({ OAUTH_ALLOWED_ORIGINS: "https://a.example.com, http://localhost:5173" })
      expect(settings.allowedOrigins).toEqual(["https://a.example.com", "http://localhost:5173"])
      expect(yield* problemsOf({ OAUTH_ALLOWED_ORIGINS: "https://a.example.com/path" })).toEqual([
        "OAUTH_ALLOWED_ORIGINS: \"https://a.example.com/path\" must be an origin: scheme, host and optional port, nothing else"
      ])
    }))

  it.effect("maps the pool settings, with the defaults of the original service", () =>
    Effect.gen(function*() {
      const defaults = yield* withEnv({})
      expect(defaults.database.pool.maxConnections).toBe(20)
      expect(Duration.toSeconds(defaults.database.pool.connectTimeout)).toBe(30)
      expect(Duration.toSeconds(defaults.database.pool.connectionTtl)).toBe(3600)
      const set = yield* withEnv({ DB_POOL_MAX: "5", DB_CONNECT_TIMEOUT: "2s", DB_IDLE_TIMEOUT: "1m", DB_CONNECTION_TTL: "600" })
      expect(set.database.pool.maxConnections).toBe(5)
      expect(Duration.toMillis(set.database.pool.connectTimeout)).toBe(2000)
      expect(Duration.toSeconds(set.database.pool.idleTimeout)).toBe(60)
      expect(Duration.toSeconds(set.database.pool.connectionTtl)).toBe(600)
    }))

  it.effect("listens on 127.0.0.1 in development and on every interface elsewhere unless HOST says", () =>
    Effect.gen(function*() {
      expect((yield* withEnv({})).host).toBe("127.0.0.1")
      expect((yield* withEnv(productionBase)).host).toBe("0.0.0.0")
      expect((yield* withEnv({ ...productionBase, HOST: "10.0.0.5" })).host).toBe("10.0.0.5")
    }))

  it.effect("reads the monitor, cache, token and OAuth settings with their defaults", () =>
    Effect.gen(function*() {
      const d = yield* withEnv({})
      expect(d.monitor.enabled).toBe(true)
      expect(Duration.toMinutes(d.monitor.interval)).toBe(1)
      expect(Duration.toMinutes(d.monitor.refreshAhead)).toBe(10)
      expect(d.monitor.batch).toBe(500)
      expect(d.monitor.concurrency).toBe(16)
      expect(Duration.toMillis(d.monitor.storeLinger)).toBe(0)
      expect(Duration.toHours(d.monitor.expirationWarning)).toBe(7 * 24)
      expect(Duration.toHours(d.monitor.validateInterval)).toBe(24)
      expect(Duration.toMinutes(d.tokens.leaseDuration)).toBe(2)
      expect(Duration.toMinutes(d.statusCache.ttl)).toBe(5)
      expect(Duration.toSeconds(d.oauth.httpTimeout)).toBe(10)
      expect(d.oauth.strictEnvMatch).toBe(false)
      const set = yield* withEnv({
        MONITOR_ENABLED: "false",
        MONITOR_INTERVAL: "30s",
        REFRESH_AHEAD: "15m",
        MONITOR_BATCH: "100",
        MONITOR_CONCURRENCY: "64",
        MONITOR_STORE_LINGER: "50ms",
        EXPIRATION_WARNING_DAYS: "3",
        VALIDATE_INTERVAL: "12h",
        LEASE_DURATION: "90s",
        STATUS_CACHE_TTL: "1m",
        OAUTH_HTTP_TIMEOUT: "5s",
        STRICT_ENV_MATCH: "true"
      })
      expect(set.monitor).toMatchObject({ enabled: false, batch: 100, concurrency: 64 })
      expect(Duration.toSeconds(set.monitor.interval)).toBe(30)
      expect(Duration.toMillis(set.monitor.storeLinger)).toBe(50)
      expect(Duration.toHours(set.monitor.expirationWarning)).toBe(72)
      expect(Duration.toSeconds(set.tokens.leaseDuration)).toBe(90)
      expect(set.oauth.strictEnvMatch).toBe(true)
    }))

  it.effect("refuses durations above their maximum, naming the maximum", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        LEASE_DURATION: "1000000000d",
        STATUS_CACHE_TTL: "2d",
        MONITOR_INTERVAL: "2h",
        REFRESH_AHEAD: "25h",
        MONITOR_STORE_LINGER: "2s",
        VALIDATE_INTERVAL: "31d"
      })
      expect(problems).toEqual([
        "LEASE_DURATION: must be at most 1h",
        "STATUS_CACHE_TTL: must be at most 1d",
        "MONITOR_INTERVAL: must be at most 1h",
        "REFRESH_AHEAD: must be at most 1d",
        "MONITOR_STORE_LINGER: must be at most 1s",
        "VALIDATE_INTERVAL: must be at most 30d"
      ])
    }))

  it.effect("accepts each monitor duration at its maximum", () =>
    Effect.gen(function*() {
      const settings = yield* withEnv({
        LEASE_DURATION: "1h",
        STATUS_CACHE_TTL: "24h",
        MONITOR_INTERVAL: "1h",
        REFRESH_AHEAD: "1d",
        VALIDATE_INTERVAL: "30d"
      })
      expect(Duration.toHours(settings.monitor.refreshAhead)).toBe(24)
      expect(Duration.toDays(settings.monitor.validateInterval)).toBe(30)
    }))

  it.effect("refuses a REFRESH_AHEAD not longer than MONITOR_INTERVAL, as tokens could expire between ticks", () =>
    Effect.gen(function*() {
      expect(yield* problemsOf({ MONITOR_INTERVAL: "10m", REFRESH_AHEAD: "10m" })).toEqual([
        "REFRESH_AHEAD: must be longer than MONITOR_INTERVAL (10m is not longer than 10m), or tokens could expire between two ticks"
      ])
      expect(yield* problemsOf({ MONITOR_INTERVAL: "15m" })).toEqual([
        "REFRESH_AHEAD: must be longer than MONITOR_INTERVAL (10m is not longer than 15m), or tokens could expire between two ticks"
      ])
    }))

  it.effect("refuses invalid monitor and cache settings at start, each named", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        MONITOR_ENABLED: "sometimes",
        MONITOR_INTERVAL: "0s",
        MONITOR_BATCH: "0",
        MONITOR_CONCURRENCY: "100000",
        EXPIRATION_WARNING_DAYS: "-1",
        VALIDATE_INTERVAL: "10s",
        LEASE_DURATION: "forever",
        STATUS_CACHE_TTL: "soon"
      })
      expect(problems).toEqual([
        "LEASE_DURATION: must be a duration such as 30s, 5m, 1h or a number of seconds",
        "STATUS_CACHE_TTL: must be a duration such as 30s, 5m, 1h or a number of seconds",
        "MONITOR_ENABLED: must be true or false",
        "MONITOR_INTERVAL: must be at least 1s",
        "MONITOR_BATCH: must be an integer from 1 to 10000",
        "MONITOR_CONCURRENCY: must be an integer from 1 to 1000",
        "EXPIRATION_WARNING_DAYS: must be an integer from 0 to 365",
        "VALIDATE_INTERVAL: must be at least 1m"
      ])
    }))
})

describe("production configuration", () => {
  it.effect("outside development refuses an http origin in OAUTH_ALLOWED_ORIGINS, naming it", () =>
    Effect.gen(function*() {
      for (const DEPLOY_ENV of ["staging", "production"]) {
        const problems = yield* problemsOf({
          ...productionBase,
          DEPLOY_ENV,
          OAUTH_ALLOWED_ORIGINS: "https://admin.example.com, http://admin.example.com, http://localhost:5173"
        })
        expect(problems).toEqual(["OAUTH_ALLOWED_ORIGINS: must use https outside development (http://admin.example.com, http://localhost:5173)"])
      }
    }))

  it.effect("outside development refuses an API key of one repeated character, naming its entry and never the key", () =>
    Effect.gen(function*() {
      const weak = "a".repeat(16)
      const problems = yield* problemsOf({ ...productionBase, API_KEYS: `${productionBase.API_KEYS},${weak}` })
      expect(problems).toEqual([
        "API_KEYS: entry 2 is too guessable outside development: about 0 bits of entropy (length × log2 of the alphabet it uses), at least 128 needed, e.g. 32 random bytes in base64url"
      ])
      expect(problems.join()).not.toContain(weak)
    }))

  it.effect("outside development refuses keys of few distinct characters or few classes however long, token keys too, one line each", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        ...productionBase,
        DEPLOY_ENV: "staging",
        // 64 characters of 2 distinct ones (64 bits); 26 digits of π (about 82 bits).
        TOKEN_API_KEYS: `${"ab".repeat(32)},${"31415926535897932384626433"}`
      })
      expect(problems.map((p) => p.split(" is too guessable")[0])).toEqual(["TOKEN_API_KEYS: entry 1", "TOKEN_API_KEYS: entry 2"])
      expect(problems[0]).toContain("about 64 bits")
    }))

  it.effect("accepts in production an API key the service generated for development", () =>
    Effect.gen(function*() {
      const development = yield* withEnv({})
      const generated = development.apiKeys.map(Redacted.value).join(",")
      expect(generated).toMatch(/^dev_[A-Za-z0-9_-]{32}$/)
      const production = yield* withEnv({ ...productionBase, API_KEYS: generated })
      expect(production.apiKeys.map(Redacted.value)).toEqual([generated])
    }))

  it.effect("refuses an HTTP_REQUEST_TIMEOUT shorter than HTTP_HEADERS_TIMEOUT: the headers are part of the request", () =>
    Effect.gen(function*() {
      expect(yield* problemsOf({ HTTP_HEADERS_TIMEOUT: "20s", HTTP_REQUEST_TIMEOUT: "15s" })).toEqual([
        "HTTP_REQUEST_TIMEOUT: must be at least HTTP_HEADERS_TIMEOUT (15s is shorter than 20s)"
      ])
      const settings = yield* withEnv({ HTTP_HEADERS_TIMEOUT: "20s", HTTP_REQUEST_TIMEOUT: "20s", HTTP_KEEP_ALIVE_TIMEOUT: "2s" })
      expect([settings.server.headersTimeout, settings.server.requestTimeout, settings.server.keepAliveTimeout].map(Duration.toSeconds)).toEqual([20, 20, 2])
    }))
})
