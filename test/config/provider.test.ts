import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { load } from "../../src/config/AppConfig.js"
import { environmentProvider } from "../../src/config/provider.js"

const scratchDir = mkdtempSync(join(tmpdir(), "oi-env-"))
afterAll(() => rmSync(scratchDir, { recursive: true, force: true }))

const dotenv = (text: string) => {
  const path = join(scratchDir, `${randomUUID()}.env`)
  writeFileSync(path, text)
  return path
}

/** The real environment of a test, with development secrets kept out of the checkout. */
const environment = (env: Record<string, string>) => ({ DEV_SECRETS_FILE: join(scratchDir, `${randomUUID()}.json`), ...env })

describe("environment provider", () => {
  it.effect("reads .env under the real environment, which wins", () =>
    Effect.gen(function*() {
      const path = dotenv("PORT=9000\nFRONTEND_URL=https://from-file.example.com\n")
      const settings = yield* load.pipe(Effect.withConfigProvider(environmentProvider(environment({ PORT: "9100" }), path)))
      expect(settings.port).toBe(9100)
      expect(settings.frontendUrl.origin).toBe("https://from-file.example.com")
    }))

  it.effect("treats empty variables as unset, so a copied .env.example starts", () =>
    Effect.gen(function*() {
      const path = dotenv("DATABASE_URL=\nHOST=\nLOG_FORMAT=\nAPI_KEYS=\nPORT=8081\n")
      const settings = yield* load.pipe(Effect.withConfigProvider(environmentProvider(environment({ TOKEN_API_KEYS: "" }), path)))
      expect(Option.isNone(settings.database.url)).toBe(true)
      expect(settings.host).toBe("127.0.0.1")
      expect(settings.port).toBe(8081)
    }))

  it.effect("an empty real variable also hides the file's value", () =>
    Effect.gen(function*() {
      const path = dotenv("PORT=9000\n")
      const settings = yield* load.pipe(Effect.withConfigProvider(environmentProvider(environment({ PORT: "" }), path)))
      expect(settings.port).toBe(8080)
    }))

  it.effect("works without a .env file", () =>
    Effect.gen(function*() {
      const settings = yield* load.pipe(Effect.withConfigProvider(environmentProvider(environment({ PORT: "1234" }), "/nonexistent/.env")))
      expect(settings.port).toBe(1234)
    }))
})
