import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, Option, Redacted } from "effect"
import type { DeployEnv } from "../../src/config/DeployEnv.js"
import { unencryptedDatabaseUrl, warnUnencryptedDatabase } from "../../src/config/databaseWarnings.js"
import { testConfig, testSettings } from "../support/config.js"

const warningsFor = (url: string, deployEnv: DeployEnv = "production") =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    yield* warnUnencryptedDatabase.pipe(
      Effect.provide(testConfig({ deployEnv, database: { ...testSettings().database, url: Option.some(Redacted.make(url)) } })),
      Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => lines.push(String(message)))))
    )
    return lines
  })

describe("the database connection at start", () => {
  it.effect("in production, a DATABASE_URL to another host without sslmode=require is warned about once, without its password", () =>
    Effect.gen(function*() {
      const lines = yield* warningsFor("postgres://app:s3cret-pw@db.example.com:5432/app")
      expect(lines).toEqual([
        "DATABASE_URL: host db.example.com is not local and sslmode is unset, not require, verify-ca or verify-full: its password and every stored token may cross the network unencrypted"
      ])
      expect(lines.join()).not.toContain("s3cret-pw")
    }))

  it.effect("a DATABASE_URL that asks for encryption too weakly (sslmode=prefer, disable) is warned about, naming the mode", () =>
    Effect.gen(function*() {
      expect(yield* warningsFor("postgres://app@10.0.0.5/app?sslmode=prefer")).toEqual([expect.stringContaining("sslmode is prefer,")])
      expect(yield* warningsFor("postgres://app@10.0.0.5/app?sslmode=disable")).toEqual([expect.stringContaining("sslmode is disable,")])
    }))

  it("a local host, a Unix socket, or sslmode require, verify-ca or verify-full needs no warning", () => {
    for (
      const url of [
        "postgres://app:pw@localhost/app",
        "postgres://app:pw@127.0.0.1:5432/app",
        "postgres://app:pw@127.1.2.3/app",
        "postgres://app:pw@[::1]:5432/app",
        "postgres://app:pw@%2Fvar%2Frun%2Fpostgresql/app",
        "postgres:///app?host=/var/run/postgresql",
        "postgres://app:pw@db.example.com/app?sslmode=require",
        "postgres://app:pw@db.example.com/app?sslmode=verify-ca",
        "postgresql://app:pw@db.example.com/app?sslmode=verify-full"
      ]
    ) {
      expect(unencryptedDatabaseUrl(url), url).toBeUndefined()
    }
    // The host parameter wins over the URL's host, as in node-postgres.
    expect(unencryptedDatabaseUrl("postgres://app@localhost/app?host=db.example.com")).toMatch(/^DATABASE_URL: host db\.example\.com /)
  })

  it.effect("in development and staging nothing is warned about", () =>
    Effect.gen(function*() {
      expect(yield* warningsFor("postgres://app@db.example.com/app", "staging")).toEqual([])
      expect(yield* warningsFor("postgres://app@db.example.com/app", "development")).toEqual([])
    }))
})
