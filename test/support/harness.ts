import { Context, Effect, Layer, Redacted, type Scope } from "effect"
import type { Settings } from "../../src/config/AppConfig.js"
import { migrate } from "../../src/db/migrations.js"
import { pgClientLayer } from "../../src/db/Database.js"
import { type Instance, startInstance } from "./app.js"
import { freshDatabase, testPool } from "./database.js"
import { fakeBing, fakeGsc, fakeWix, fakeWordpress, type FakeOAuthPlatform, type FakeOptions } from "./platforms/index.js"

export const FRONTEND = "http://app.test"
export const redirectUri = (key: string) => `${FRONTEND}/oauth/${key}/callback`

export interface Fakes {
  readonly gsc: FakeOAuthPlatform
  readonly bing: FakeOAuthPlatform
  readonly wordpress: FakeOAuthPlatform
  readonly wix: FakeOAuthPlatform
}

export interface HarnessShape {
  readonly databaseUrl: string
  readonly fakes: Fakes
  readonly env: Readonly<Record<string, string>>
  readonly instance: Instance
  /** Another instance on the same database (its own pool, cache and breakers). */
  readonly startAnother: (settings?: Partial<Settings>, options?: { readonly fastPath?: boolean }) => Effect.Effect<Instance, never, Scope.Scope>
}

export class Harness extends Context.Tag("test/Harness")<Harness, HarnessShape>() {}

export const envFor = (fakes: Fakes) => ({
  ...fakes.gsc.env(redirectUri("gsc")),
  ...fakes.bing.env(redirectUri("bing")),
  ...fakes.wordpress.env(redirectUri("wordpress")),
  ...fakes.wix.env(redirectUri("wix"))
})

/**
 * A migrated database, the four fake platforms and one service instance pointed at them:
 * what the end-to-end tests of a file share.
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
      const fakes = yield* Effect.all({
        gsc: fakeGsc(options.fakeOptions?.gsc),
        bing: fakeBing(options.fakeOptions?.bing),
        wordpress: fakeWordpress(options.fakeOptions?.wordpress),
        wix: fakeWix(options.fakeOptions?.wix)
      })
      const env = { ...envFor(fakes), ...options.env }
      const settings: Partial<Settings> = { frontendUrl: new URL(FRONTEND), ...options.settings }
      const start = (more: Partial<Settings> = {}, instanceOptions: { readonly fastPath?: boolean } = {}) =>
        startInstance({ databaseUrl, env, settings: { ...settings, ...more }, ...instanceOptions }).pipe(Effect.orDie)
      const instance = yield* start()
      return { databaseUrl, fakes, env, instance, startAnother: start }
    })
  )
