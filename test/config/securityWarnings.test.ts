import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import type { Settings } from "../../src/config/Settings.js"
import { warnConfirmationOff } from "../../src/config/securityWarnings.js"
import { testConfig, testSettings } from "../support/config.js"

const warnings = (settings: Partial<Settings>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    yield* warnConfirmationOff.pipe(
      Effect.provide(testConfig(settings)),
      Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => lines.push(String(message)))))
    )
    return lines
  })

const off = { ...testSettings().oauth, confirmation: "off" as const }

describe("security warnings at start", () => {
  it.effect("OAUTH_CONFIRMATION=off in production is a warning naming the setting and the risk", () =>
    Effect.gen(function*() {
      const lines = yield* warnings({ deployEnv: "production", oauth: off })
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/^OAUTH_CONFIRMATION=off: .*forwarded authorisation URL/)
    }))

  it.effect("OAUTH_CONFIRMATION=off in development, or required anywhere, says nothing", () =>
    Effect.gen(function*() {
      expect(yield* warnings({ deployEnv: "development", oauth: off })).toEqual([])
      expect(yield* warnings({ deployEnv: "production" })).toEqual([])
    }))
})
