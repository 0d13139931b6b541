import { randomUUID } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Logger, Redacted } from "effect"
import { loadSettings } from "../../src/config/AppConfig.js"
import type { ConfigInvalid } from "../../src/config/ConfigInvalid.js"

const key32 = (fill: number) => Buffer.alloc(32, fill).toString("base64")

const root = mkdtempSync(join(tmpdir(), "oi-dev-secrets-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** A secrets file path in a directory that does not exist yet. */
const secretsFile = () => join(root, randomUUID(), "dev-secrets.json")

const start = (env: Record<string, string>, options = { servesApi: true }) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const settings = yield* loadSettings(options).pipe(
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
      Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => lines.push(String(message)))))
    )
    return { settings, lines }
  })

const apiKeyOf = (settings: { readonly apiKeys: ReadonlyArray<Redacted.Redacted> }) => settings.apiKeys.map(Redacted.value)

describe("development secrets file", () => {
  it.effect("is created with mode 0600, in a directory created for it, on the first start", () =>
    Effect.gen(function*() {
      const file = secretsFile()
      yield* start({ DEV_SECRETS_FILE: file })
      expect(statSync(file).mode & 0o777).toBe(0o600)
      // The embedded database lives in that directory by default: PostgreSQL's user must traverse it.
      expect(statSync(dirname(file)).mode & 0o111).toBe(0o111)
      expect(Object.keys(JSON.parse(readFileSync(file, "utf8"))).sort()).toEqual(["API_KEYS", "TOKEN_ENCRYPTION_KEYS"])
    }))

  it.effect("gives a later start the same encryption key and API key, so stored connections stay readable", () =>
    Effect.gen(function*() {
      const file = secretsFile()
      const first = yield* start({ DEV_SECRETS_FILE: file })
      const second = yield* start({ DEV_SECRETS_FILE: file })
      expect(second.settings.encryptionKeys[0].id).toBe(first.settings.encryptionKeys[0].id)
      expect(Redacted.value(second.settings.encryptionKeys[0].key)).toEqual(Redacted.value(first.settings.encryptionKeys[0].key))
      expect(apiKeyOf(second.settings)).toEqual(apiKeyOf(first.settings))
    }))

  it.effect("uses a random key id of the TOKEN_ENCRYPTION_KEYS format", () =>
    Effect.gen(function*() {
      const a = yield* start({ DEV_SECRETS_FILE: secretsFile() })
      const b = yield* start({ DEV_SECRETS_FILE: secretsFile() })
      expect(a.settings.encryptionKeys[0].id).toMatch(/^dev-[0-9a-f]{8}$/)
      expect(a.settings.encryptionKeys[0].id).not.toBe(b.settings.encryptionKeys[0].id)
    }))

  it.effect("prints the API key when it is generated, and afterwards only names the file it is in", () =>
    Effect.gen(function*() {
      const file = secretsFile()
      const first = yield* start({ DEV_SECRETS_FILE: file })
      const [key] = apiKeyOf(first.settings)
      expect(first.lines).toHaveLength(1)
      expect(first.lines[0]).toContain(`${file} (generated now); API key, token scope included: ${key}`)
      const second = yield* start({ DEV_SECRETS_FILE: file })
      expect(second.lines).toEqual([
        `TOKEN_ENCRYPTION_KEYS and API_KEYS are not set: using the development secrets in ${file}; the API key is in that file`
      ])
    }))

  it.effect("takes only the secrets that are not configured, and never prints a configured one", () =>
    Effect.gen(function*() {
      const file = secretsFile()
      const { settings, lines } = yield* start({ DEV_SECRETS_FILE: file, API_KEYS: "configured-key-0123456789" })
      expect(apiKeyOf(settings)).toEqual(["configured-key-0123456789"])
      expect(lines).toEqual([`TOKEN_ENCRYPTION_KEYS is not set: using the development secrets in ${file} (generated now)`])
      expect(Object.keys(JSON.parse(readFileSync(file, "utf8")))).toEqual(["TOKEN_ENCRYPTION_KEYS"])
    }))

  it.effect("is not used when both secrets are configured", () =>
    Effect.gen(function*() {
      const file = secretsFile()
      const { lines } = yield* start({ DEV_SECRETS_FILE: file, API_KEYS: "configured-key-0123456789", TOKEN_ENCRYPTION_KEYS: `k1:${key32(3)}` })
      expect(lines).toEqual([])
      expect(() => statSync(file)).toThrow()
    }))

  it.effect("is never read outside development, where missing secrets refuse the start", () =>
    Effect.gen(function*() {
      const file = secretsFile()
      yield* start({ DEV_SECRETS_FILE: file })
      const error: ConfigInvalid = yield* Effect.flip(start({ DEV_SECRETS_FILE: file, DEPLOY_ENV: "staging", FRONTEND_URL: "https://app.example.com" }))
      expect(error.problems).toEqual([
        "TOKEN_ENCRYPTION_KEYS: is required outside development (kid:base64 of 32 random bytes)",
        "API_KEYS: is required outside development"
      ])
    }))

  it.effect("gives a command that serves no API no API key, and neither generates nor prints one", () =>
    Effect.gen(function*() {
      const file = secretsFile()
      const { settings, lines } = yield* start({ DEV_SECRETS_FILE: file }, { servesApi: false })
      expect(settings.apiKeys).toEqual([])
      expect(settings.tokenApiKeys).toEqual([])
      expect(lines).toEqual([`TOKEN_ENCRYPTION_KEYS is not set: using the development secrets in ${file} (generated now)`])
      expect(Object.keys(JSON.parse(readFileSync(file, "utf8")))).toEqual(["TOKEN_ENCRYPTION_KEYS"])
    }))

  it.effect("adds an API key to a file that had none, keeping its encryption key", () =>
    Effect.gen(function*() {
      const file = secretsFile()
      const worker = yield* start({ DEV_SECRETS_FILE: file }, { servesApi: false })
      const serve = yield* start({ DEV_SECRETS_FILE: file })
      expect(serve.settings.encryptionKeys[0].id).toBe(worker.settings.encryptionKeys[0].id)
      expect(serve.lines[0]).toContain("(generated now); API key, token scope included: dev_")
      expect(statSync(file).mode & 0o777).toBe(0o600)
    }))

  it.effect("refuses a damaged file in one line naming DEV_SECRETS_FILE, without printing its content", () =>
    Effect.gen(function*() {
      const file = join(root, "damaged.json")
      writeFileSync(file, `{"TOKEN_ENCRYPTION_KEYS": "k1:${key32(5).slice(0, 20)}"}`)
      const error: ConfigInvalid = yield* Effect.flip(start({ DEV_SECRETS_FILE: file }))
      expect(error.problems).toEqual([`DEV_SECRETS_FILE: its TOKEN_ENCRYPTION_KEYS is invalid: fix it or delete the file (${file})`])
      writeFileSync(file, "not json")
      const unparsable: ConfigInvalid = yield* Effect.flip(start({ DEV_SECRETS_FILE: file }))
      expect(unparsable.problems).toEqual([
        `DEV_SECRETS_FILE: is not a JSON object of TOKEN_ENCRYPTION_KEYS and API_KEYS strings: fix it, or delete it to generate new secrets (${file})`
      ])
    }))
})
