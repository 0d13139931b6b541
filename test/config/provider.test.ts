import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { load } from "../../src/config/AppConfig.js"
import { environmentProvider } from "../../src/config/provider.js"

const dotenv = (text: string) => {
  const path = join(mkdtempSync(join(tmpdir(), "oi-env-")), ".env")
  writeFileSync(path, text)
  return path
}

describe("environment provider", () => {
  it.effect("reads .env under the real environment, which wins", () =>
    Effect.gen(function*() {
      const path = dotenv("PORT=9000\nFRONTEND_URL=https://from-file.example.com\n")
      const settings = yield* load.pipe(Effect.withConfigProvider(environmentProvider({ PORT: "9100" }, path)))
      expect(settings.port).toBe(9100)
      expect(settings.frontendUrl.origin).toBe("https://from-file.example.com")
    }))

  it.effect("treats empty variables as unset, so a copied .env.example starts", () =>
    Effect.gen(function*() {
      const path = dotenv("DATABASE_URL=\nHOST=\nLOG_FORMAT=\nAPI_KEYS=\nPORT=8081\n")
      const settings = yield* load.pipe(Effect.withConfigProvider(environmentProvider({ TOKEN_API_KEYS: "" }, path)))
      expect(Option.isNone(settings.database.url)).toBe(true)
      expect(settings.host).toBe("127.0.0.1")
      expect(settings.port).toBe(8081)
    }))

  it.effect("an empty real variable also hides the file's value", () =>
    Effect.gen(function*() {
      const path = dotenv("PORT=9000\n")
      const settings = yield* load.pipe(Effect.withConfigProvider(environmentProvider({ PORT: "" }, path)))
      expect(settings.port).toBe(8080)
    }))

  it.effect("works without a .env file", () =>
    Effect.gen(function*() {
      const settings = yield* load.pipe(Effect.withConfigProvider(environmentProvider({ PORT: "1234" }, "/nonexistent/.env")))
      expect(settings.port).toBe(1234)
    }))
})
