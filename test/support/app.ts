import { HttpServer } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import type { PgClient } from "@effect/sql-pg"
import { ConfigProvider, Context, Effect, Layer, Logger, LogLevel, Option, Redacted } from "effect"
import { AppConfig } from "../../src/config/AppConfig.js"
import type { Settings } from "../../src/config/Settings.js"
import { pgClientLayer } from "../../src/db/Database.js"
import { serverLayer } from "../../src/http/nodeServer.js"
import { serveApi } from "../../src/http/server.js"
import { StatusCache } from "../../src/http/StatusCache.js"
import type { PlatformDefinition } from "../../src/platforms/definition.js"
import { PlatformCatalog } from "../../src/registry/ProviderRegistry.js"
import { makeServices, type ServicesLive } from "../../src/services.js"
import { suiteCatalog } from "./catalog.js"
import { testPool } from "./database.js"
import { testSettings } from "./config.js"

export const API_KEY = "test-api-key-0123456789"
export const TOKEN_KEY = "test-token-key-0123456789"

export interface Instance {
  readonly baseUrl: string
  readonly context: Context.Context<Layer.Layer.Success<typeof ServicesLive> | AppConfig | SqlClient.SqlClient | PgClient.PgClient>
  /** fetch against the instance, with the API key unless headers say otherwise. */
  readonly request: (path: string, init?: RequestInit & { readonly key?: string | null }) => Promise<Response>
}

/**
 * One service instance — pool, caches, registry, HTTP server on an ephemeral port — on
 * the database at `databaseUrl`, configured by `settings` and the platform variables in
 * `env`. Stops with the scope.
 */
export const startInstance = (options: {
  readonly databaseUrl: string
  readonly env?: Readonly<Record<string, string>>
  readonly settings?: Partial<Settings>
  /** Every log line of the instance, as logfmt, is pushed here. */
  readonly logs?: Array<string>
  /** The platforms offered; the suite's catalog (test/support/catalog.ts) by default. */
  readonly catalog?: ReadonlyArray<PlatformDefinition>
  /** Answer the status reads before the HttpApi pipeline, as the service does (default true). */
  readonly fastPath?: boolean
  /** The port to listen on (default: any free one). */
  readonly port?: number
}) =>
  Effect.gen(function*() {
    // The test pool unless the settings give one (its statement timeout is long: CI machines are slow).
    const pool = options.settings?.database?.pool ?? testPool
    const settings = testSettings({
      apiKeys: [Redacted.make(API_KEY)],
      tokenApiKeys: [Redacted.make(TOKEN_KEY)],
      ...options.settings,
      database: { ...testSettings().database, pool, url: Option.some(Redacted.make(options.databaseUrl)) }
    })
    const storage = pgClientLayer(Redacted.make(options.databaseUrl), pool).pipe(
      Layer.provideMerge(Layer.succeed(AppConfig, settings))
    )
    const catalog = PlatformCatalog.layer(options.catalog ?? suiteCatalog)
    const services = makeServices(catalog).pipe(Layer.provideMerge(storage))
    const logs = options.logs
    const logging = logs === undefined
      ? Logger.minimumLogLevel(LogLevel.Warning)
      : Layer.merge(
        Logger.replace(Logger.defaultLogger, Logger.make((entry) => void logs.push(Logger.logfmtLogger.log(entry)))),
        Logger.minimumLogLevel(LogLevel.All)
      )
    const app = serveApi.pipe(
      Layer.provideMerge(serverLayer({ port: options.port ?? 0, host: "127.0.0.1" }, settings.server, options.fastPath ?? true)),
      Layer.provide(StatusCache.Default),
      Layer.provideMerge(services),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(options.env ?? {}))))),
      Layer.provide(logging)
    )
    const context = yield* Layer.build(app)
    const server = Context.get(context, HttpServer.HttpServer)
    const address = server.address
    const baseUrl = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : ""
    const request: Instance["request"] = (path, init = {}) => {
      const { key, ...rest } = init
      const headers = new Headers(rest.headers)
      const used = key === undefined ? API_KEY : key
      if (used !== null && !headers.has("authorization")) headers.set("authorization", `Bearer ${used}`)
      return fetch(`${baseUrl}${path}`, { ...rest, headers, redirect: "manual" })
    }
    return { baseUrl, context, request } satisfies Instance
  })
