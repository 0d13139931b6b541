import { spawnSync } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, Redacted } from "effect"
import pg from "pg"
import { startEmbeddedPostgres } from "../../src/db/embedded.js"
import { readPostmaster } from "../../src/db/embeddedGuards.js"
import { findBinaries } from "../../src/db/embeddedPlacement.js"
import { answers } from "../support/database.js"
import { failureTagged } from "../support/effects.js"
import { scratchDirectory, startService } from "../support/processes.js"

const asRoot = process.getuid?.() === 0

/** A home directory as root has one: mode 0700, closed to PostgreSQL's user. */
const closedHome = (root: string) => {
  const home = join(root, "home")
  mkdirSync(home)
  chmodSync(home, 0o700)
  return home
}

/** The log lines an effect writes, as text. */
const logged = (lines: Array<string>) => Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void lines.push(String(message))))

const serverBinaryOf = (dataDir: string) => {
  const pid = readPostmaster(join(dataDir, "postmaster.pid"))?.pid
  return pid === undefined ? undefined : readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]
}

describe.runIf(asRoot)("the embedded PostgreSQL started by root from a closed home directory", () => {
  it.scopedLive("binaries PostgreSQL's user cannot reach are copied to an open cache directory, said so, and run from there", () =>
    Effect.gen(function*() {
      const root = scratchDirectory()
      const home = closedHome(root)
      // The project's node_modules inside the closed home, as in a clone under /root.
      const installed = yield* findBinaries()
      symlinkSync(installed.dir, join(home, "native"))
      const lines: Array<string> = []
      const cache = join(root, "cache")
      const dataDir = join(root, "open", "pg")
      const url = yield* startEmbeddedPostgres(dataDir, { binaries: join(home, "native"), cacheRoot: cache }).pipe(Effect.provide(logged(lines)))
      expect(yield* answers(url)).toBe(1)
      expect(serverBinaryOf(dataDir)?.startsWith(`${cache}/`)).toBe(true)
      expect(lines.some((l) => l.includes(`PostgreSQL runs from ${cache}/`) && l.includes(`cannot enter ${home}`))).toBe(true)
    }), 60_000)

  it.scopedLive("the default data directory under a closed home is placed where PostgreSQL's user can reach it, and found there again", () =>
    Effect.gen(function*() {
      const root = scratchDirectory()
      const home = closedHome(root)
      const dataRoot = join(root, "lib")
      const configured = join(home, "project", ".data", "pg")
      const lines: Array<string> = []
      const first = yield* Effect.scoped(
        Effect.gen(function*() {
          const url = yield* startEmbeddedPostgres(configured, { relocatable: true, dataRoot })
          const client = new pg.Client({ connectionString: Redacted.value(url) })
          yield* Effect.promise(() => client.connect().then(() => client.query("create table kept (n int)")).then(() => client.end()))
        }).pipe(Effect.provide(logged(lines)))
      )
      expect(first).toBeUndefined()
      const placed = readdirSync(dataRoot).map((d) => join(dataRoot, d, "pg"))
      expect(placed).toHaveLength(1)
      expect(existsSync(join(placed[0] ?? "", "PG_VERSION"))).toBe(true)
      expect(lines.some((l) => l.includes(`the embedded database lives in ${placed[0]}`))).toBe(true)
      // A second start of the same project uses the same data.
      const url = yield* startEmbeddedPostgres(configured, { relocatable: true, dataRoot })
      const client = new pg.Client({ connectionString: Redacted.value(url) })
      yield* Effect.promise(() => client.connect())
      const { rows } = yield* Effect.promise(() => client.query<{ n: string }>("select count(*) as n from kept"))
      yield* Effect.promise(() => client.end())
      expect(rows[0]?.n).toBe("0")
    }), 60_000)

  it.scopedLive("a chosen data directory under a closed home is refused, naming the variable and the rule", () =>
    Effect.gen(function*() {
      const home = closedHome(scratchDirectory())
      const error = yield* failureTagged(Effect.scoped(startEmbeddedPostgres(join(home, "pg"))), "ConfigInvalid")
      expect(error.problems).toHaveLength(1)
      expect(error.problems[0]).toMatch(
        /^EMBEDDED_DATABASE_DIR: the directory and all its parents must be reachable by the unprivileged user "postgres" PostgreSQL runs as, but .*\/home is mode 700: choose a directory/
      )
    }))

  it("`migrate` from a project under a closed home works with the defaults and says where the data went", async () => {
    const home = closedHome(scratchDirectory())
    const project = join(home, "project")
    mkdirSync(project)
    const migrate = startService(["migrate"], { DEPLOY_ENV: "development" }, project)
    const exit = await migrate.exit
    const output = migrate.lines.join("\n")
    const placed = /the embedded database lives in (\S+)/.exec(output)?.[1]?.replace(/[",:]+$/, "")
    try {
      expect(exit.code).toBe(0)
      expect(placed?.startsWith("/var/lib/oauth-integrations/")).toBe(true)
      expect(output).toMatch(/migrations are up to date/)
    } finally {
      if (placed !== undefined && placed.startsWith("/var/lib/oauth-integrations/")) rmSync(dirname(placed), { recursive: true, force: true })
    }
  }, 60_000)

  it("`npm test` says why when the embedded PostgreSQL cannot start", () => {
    // The tests' embedded server lives in TMPDIR: a closed one makes its start fail.
    const closed = closedHome(mkdtempSync(join(tmpdir(), "oi-closed-")))
    const env: Record<string, string> = { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", TMPDIR: closed }
    const run = spawnSync(resolve("node_modules/.bin/vitest"), ["run", "test/config/listen.test.ts"], { env, encoding: "utf8", timeout: 60_000 })
    rmSync(dirname(closed), { recursive: true, force: true })
    expect(run.status).not.toBe(0)
    expect(`${run.stdout}${run.stderr}`).toMatch(
      /The tests need PostgreSQL: DATABASE_URL is unset, and the embedded PostgreSQL could not start:\nEMBEDDED_DATABASE_DIR: the directory and all its parents must be reachable/
    )
  }, 90_000)
})
