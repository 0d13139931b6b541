import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { PgLive, rememberNames } from "../../src/db/Database.js"
import { startEmbeddedPostgres } from "../../src/db/embedded.js"
import { closedParent, isAlive } from "../../src/db/embeddedGuards.js"
import { testConfig, testSettings } from "../support/config.js"
import { answers } from "../support/database.js"
import { failureTagged } from "../support/effects.js"

const withUrl = (url: string) =>
  testConfig({
    database: { ...testSettings().database, url: Option.some(Redacted.make(url)) }
  })

/** A directory removed with the scope; open to all, as PostgreSQL runs as its own user under root. */
const scratch = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = mkdtempSync(join(tmpdir(), "oi-embedded-"))
    chmodSync(dir, 0o755)
    return dir
  }),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** Initialises the data directory with a start that stops cleanly. */
const initialised = (dataDir: string) => Effect.scoped(startEmbeddedPostgres(dataDir))

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

describe("rememberNames", () => {
  it("renames as the transform does, computing each name once", () => {
    const calls: Array<string> = []
    const rename = rememberNames((name) => {
      calls.push(name)
      return name.toUpperCase()
    })
    expect(["a_b", "c", "a_b", "c", "a_b"].map(rename)).toEqual(["A_B", "C", "A_B", "C", "A_B"])
    expect(calls).toEqual(["a_b", "c"])
  })

  it("past its limit, renames the names it does not keep anew", () => {
    const calls: Array<string> = []
    const rename = rememberNames((name) => {
      calls.push(name)
      return `${name}!`
    }, 1)
    expect(["a", "b", "a", "b"].map(rename)).toEqual(["a!", "b!", "a!", "b!"])
    expect(calls).toEqual(["a", "b", "b"])
  })
})

describe("embedded PostgreSQL", () => {
  it.scopedLive("a pid file naming a live process that is not this directory's PostgreSQL is taken as stale", () =>
    Effect.gen(function*() {
      const dataDir = join(yield* scratch, "pg")
      yield* initialised(dataDir)
      // This test's own process: alive, and no PostgreSQL.
      writeFileSync(join(dataDir, "postmaster.pid"), `${process.pid}\n${dataDir}\n`)
      const url = yield* startEmbeddedPostgres(dataDir)
      expect(yield* answers(url)).toBe(1)
      expect(isAlive(process.pid)).toBe(true)
    }), 60_000)

  it.scoped("finds the first parent that PostgreSQL's user may not enter", () =>
    Effect.gen(function*() {
      const root = yield* scratch
      mkdirSync(join(root, "private", "app"), { recursive: true })
      chmodSync(join(root, "private"), 0o700)
      const stranger = { name: "postgres", uid: 1_234_567, gid: 1_234_567 }
      expect(closedParent(join(root, "private", "app", "pg"), stranger)).toEqual({ path: join(root, "private"), mode: 0o700 })
      expect(closedParent(join(root, "open", "pg"), stranger)).toBeUndefined()
    }))

  it.scopedLive.runIf(process.getuid?.() === 0)("run as root, refuses a directory PostgreSQL's user cannot reach, naming the variable and the rule", () =>
    Effect.gen(function*() {
      const root = yield* scratch
      mkdirSync(join(root, "private"))
      chmodSync(join(root, "private"), 0o700)
      const error = yield* failureTagged(Effect.scoped(startEmbeddedPostgres(join(root, "private", "pg"))), "ConfigInvalid")
      expect(error.problems).toHaveLength(1)
      expect(error.problems[0]).toMatch(
        /^EMBEDDED_DATABASE_DIR: the directory and all its parents must be reachable by the unprivileged user "postgres" PostgreSQL runs as, but .*\/private is mode 700: choose a directory/
      )
    }))
})
