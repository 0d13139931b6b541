import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { PgLive } from "../../src/db/Database.js"
import { testConfig, testSettings } from "../support/config.js"
import { failureTagged } from "../support/effects.js"

const withUrl = (url: string) =>
  testConfig({
    database: { ...testSettings().database, url: Option.some(Redacted.make(url)) }
  })

describe("PgLive", () => {
  it.live("an unreachable database stops the start with one line naming DATABASE_URL, without the password", () =>
    Effect.gen(function*() {
      const error = yield* failureTagged(
        Layer.build(PgLive).pipe(Effect.provide(withUrl("postgres://app:s3cret-pw@127.0.0.1:1/app")), Effect.scoped),
        "ConfigInvalid"
      )
      expect(error.problems).toEqual(["DATABASE_URL: cannot connect to PostgreSQL (connection refused)"])
    }))
})
