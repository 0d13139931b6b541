import { Context, Effect, Layer, Record, Redacted, type Scope } from "effect"
import type { Settings } from "../../src/config/Settings.js"
import { migrate } from "../../src/db/migrations.js"
import { pgClientLayer } from "../../src/db/Database.js"
import { type Instance, startInstance } from "./app.js"
import { fakeServers, suiteCatalog } from "./catalog.js"
import { freshDatabase, testPool } from "./database.js"
import type { FakeOAuthPlatform, FakeOptions } from "./platforms/index.js"
import { scoped } from "./platforms/server.js"

export const FRONTEND = "http://app.test"
export const redirectUri = (key: string) => `${FRONTEND}/oauth/${key}/callback`

/** A fake per platform of the suite's catalog. */
export type Fakes = { readonly [K in keyof typeof fakeServers]: FakeOAuthPlatform }

export interface HarnessShape {
  readonly databaseUrl: string
  readonly fakes: Fakes
  /** The fake of a platform of the catalog by its key: for tests that enumerate the catalog. */
  readonly fakeOf: (key: string) => FakeOAuthPlatform
  readonly env: Readonly<Record<string, string>>
  readonly instance: Instance
  /** Another instance on the same database (its own pool, cache and breakers). */
  readonly startAnother: (settings?: Partial<Settings>, options?: { readonly fastPath?: boolean }) => Effect.Effect<Instance, never, Scope.Scope>
}

export class Harness extends Context.Tag("test/Harness")<Harness, HarnessShape>() {}

/** Every platform's variables, pointing it at its fake. */
export const envFor = (fakes: Fakes): Record<string, string> =>
  Object.fromEntries(Object.entries(fakes).flatMap(([key, fake]) => Object.entries(fake.env(redirectUri(key)))))

/**
 * A migrated database, a fake of each platform of the suite's catalog and one service
 * instance pointed at them: what the end-to-end tests of a file share.
 */
export const HarnessLive = (options: {
  readonly settings?: Partial<Settings>
  readonly fakeOptions?: Partial<Record<keyof Fakes, FakeOptions>>
  readonly env?: Readonly<Record<string, string>>
} = {}) =>
  Layer.scoped(
    Harness,
    Effect.gen(function*() {
      const databaseUrl = yield* freshDatabase
      yield* migrate().pipe(Effect.provide(pgClientLayer(Redacted.make(databaseUrl), testPool)), Effect.orDie)
      const fakes = yield* Effect.all(Record.map(fakeServers, (start, key) => scoped(() => start(options.fakeOptions?.[key]))))
      const byKey = new Map<string, FakeOAuthPlatform>(Object.entries(fakes))
      const unfaked = suiteCatalog.filter((definition) => !byKey.has(definition.key)).map((definition) => definition.key)
      if (unfaked.length > 0) return yield* Effect.dieMessage(`no fake for ${unfaked.join(", ")}: add it to fakeServers in test/support/catalog.ts`)
      const fakeOf = (key: string) => {
        const fake = byKey.get(key)
        if (fake === undefined) throw new Error(`no fake for the platform ${key}`)
        return fake
      }
      const env = { ...envFor(fakes), ...options.env }
      const settings: Partial<Settings> = { frontendUrl: new URL(FRONTEND), ...options.settings }
      const start = (more: Partial<Settings> = {}, instanceOptions: { readonly fastPath?: boolean } = {}) =>
        startInstance({ databaseUrl, env, settings: { ...settings, ...more }, ...instanceOptions }).pipe(Effect.orDie)
      const instance = yield* start()
      return { databaseUrl, fakes, fakeOf, env, instance, startAnother: start }
    })
  )
