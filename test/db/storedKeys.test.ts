import { describe, expect, layer } from "@effect/vitest"
import { Effect, Exit, HashMap, Layer, Logger, Option, Redacted } from "effect"
import type { Settings } from "../../src/config/Settings.js"
import type { EncryptionKey } from "../../src/config/secrets.js"
import { makeCipher, TokenCipher } from "../../src/crypto/TokenCipher.js"
import { ConnectionRepository } from "../../src/db/ConnectionRepository.js"
import { StoredKeysCheckLive } from "../../src/db/storedKeys.js"
import { randomKey, testConfig } from "../support/config.js"
import { EmptyDatabaseLive, TestDatabaseLive } from "../support/database.js"
import { failureTagged } from "../support/effects.js"
import { at } from "../support/time.js"

const current = randomKey("current")
const lostDev = randomKey("dev-20bb1455")
const old = randomKey("old-key")
const gone = randomKey("gone")

let n = 0
/** Stores `count` connections sealed under `key`. */
const seal = (key: EncryptionKey, count: number) =>
  Effect.flatMap(ConnectionRepository, (repo) =>
    Effect.forEach(Array.from({ length: count }), () =>
      repo.upsert({
        userId: `user-${++n}`,
        platform: "gsc",
        accountId: "",
        providerData: {},
        tokens: {
          accessToken: Redacted.make("access"),
          refreshToken: Option.some(Redacted.make("refresh")),
          tokenType: "Bearer",
          scope: null,
          expiresAt: at(3600)
        }
      }, at(0)))).pipe(
    Effect.provide(ConnectionRepository.DefaultWithoutDependencies.pipe(
      Layer.provide(Layer.succeed(TokenCipher, TokenCipher.make(makeCipher([key]))))
    ))
  )

/**
 * Three connections under dev-20bb1455, one under old-key, two under current, and one
 * disconnected (its key id and ciphertexts forgotten, so it needs no key).
 */
const StoredLive = Layer.effectDiscard(Effect.gen(function*() {
  yield* seal(lostDev, 3)
  yield* seal(old, 1)
  yield* seal(current, 2)
  const [disconnected] = yield* seal(gone, 1)
  if (disconnected !== undefined) {
    yield* Effect.flatMap(ConnectionRepository, (repo) => repo.disconnect(disconnected.userId, "gsc", at(10))).pipe(
      Effect.provide(ConnectionRepository.DefaultWithoutDependencies.pipe(
        Layer.provide(Layer.succeed(TokenCipher, TokenCipher.make(makeCipher([gone]))))
      ))
    )
  }
})).pipe(Layer.provideMerge(TestDatabaseLive))

/** The start check as the service builds it, with these settings. */
const startCheck = (settings: Partial<Settings>) =>
  Layer.build(StoredKeysCheckLive).pipe(Effect.provide(testConfig(settings)), Effect.scoped)

describe("the start's check of the stored connections' keys", () => {
  layer(StoredLive, { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    for (const deployEnv of ["staging", "production"] as const) {
      it.effect(`stops a ${deployEnv} start with one line per key id in use but not configured, with its count`, () =>
        Effect.gen(function*() {
          const error = yield* failureTagged(startCheck({ deployEnv, encryptionKeys: [current] }), "ConfigInvalid")
          expect(error.problems).toEqual([
            `TOKEN_ENCRYPTION_KEYS: key "dev-20bb1455" seals 3 stored connection(s) and is not configured`,
            `TOKEN_ENCRYPTION_KEYS: key "old-key" seals 1 stored connection(s) and is not configured`
          ])
        }))
    }

    it.effect("lets a production start go on when every key in use is configured, the old ones after the current one", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(startCheck({ deployEnv: "production", encryptionKeys: [current, lostDev, old] }))
        expect(Exit.isSuccess(exit)).toBe(true)
      }))

    it.effect("only warns in development, with the same line per missing key id and a hint", () =>
      Effect.gen(function*() {
        const lines: Array<{ level: string; message: string; hint: unknown }> = []
        const capture = Logger.replace(
          Logger.defaultLogger,
          Logger.make(({ annotations, logLevel, message }) =>
            void lines.push({ level: logLevel.label, message: String(message), hint: Option.getOrUndefined(HashMap.get(annotations, "hint")) }))
        )
        const exit = yield* Effect.exit(startCheck({ deployEnv: "development", encryptionKeys: [current, old] }).pipe(Effect.provide(capture)))
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(lines.map(({ level, message }) => ({ level, message }))).toEqual([
          { level: "WARN", message: `TOKEN_ENCRYPTION_KEYS: key "dev-20bb1455" seals 3 stored connection(s) and is not configured` }
        ])
        expect(lines[0]?.hint).toMatch(/restore the key, or list it after the current key in TOKEN_ENCRYPTION_KEYS/)
      }))
  })

  layer(EmptyDatabaseLive, { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("reports a database that cannot answer the count as unavailable, not as a missing key", () =>
      Effect.gen(function*() {
        const error = yield* failureTagged(
          startCheck({ deployEnv: "production", encryptionKeys: [current] }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger))),
          "DatabaseUnavailable"
        )
        expect(error.message).toMatch(/cannot check the key ids of the stored connections against TOKEN_ENCRYPTION_KEYS/)
      }))
  })
})
