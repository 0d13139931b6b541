import { type ChildProcess, spawn } from "node:child_process"
import { chmodSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Effect, Exit, Option, Redacted, Scope } from "effect"
import { afterEach, onTestFinished } from "vitest"
import type { EncryptionKey } from "../../src/config/secrets.js"
import { ConnectionRepository } from "../../src/db/ConnectionRepository.js"
import { pgClientLayer } from "../../src/db/Database.js"
import { migrate } from "../../src/db/migrations.js"
import { TokenCipher } from "../../src/crypto/TokenCipher.js"
import { testConfig } from "./config.js"
import { seedDueConnections } from "./connections.js"
import { freshDatabase, testPool } from "./database.js"
import { FRONTEND } from "./harness.js"
import type { FakeOAuthPlatform } from "./platforms/index.js"

/** The service as `npm start` runs it, built by the tests' global setup. */
export const MAIN = resolve("dist/main.js")

export interface ServiceProcess {
  readonly child: ChildProcess
  readonly pid: number
  /** Everything it printed so far, stdout and stderr, a line each. */
  readonly lines: Array<string>
  readonly waitForLine: (pattern: RegExp, timeoutMs?: number) => Promise<string>
  readonly exit: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  /** A signal to the process alone, or to its whole process group, as a terminal's Ctrl-C does. */
  readonly signal: (signal: NodeJS.Signals, target?: "process" | "group") => void
}

const running = new Set<ServiceProcess>()

// A test that fails midway must not leave a service behind.
afterEach(() => {
  for (const service of running) {
    try {
      process.kill(-service.pid, "SIGKILL")
    } catch {
      // gone already
    }
  }
  running.clear()
})

/** A directory removed after the test; open to all, as PostgreSQL runs as its own user under root. */
export const scratchDirectory = (prefix = "oi-process-") => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  chmodSync(dir, 0o755)
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * `node dist/main.js <args>` in a process group of its own, from `cwd` (so no developer's
 * .env is read), with only `env` and PATH in its environment; logs are JSON lines.
 */
export const startService = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>, cwd: string): ServiceProcess => {
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", LOG_FORMAT: "json", ...env }
  })
  const lines: Array<string> = []
  const waiters = new Set<() => void>()
  const take = (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split("\n")) if (line.trim() !== "") lines.push(line)
    for (const wake of waiters) wake()
  }
  child.stdout?.on("data", take)
  child.stderr?.on("data", take)
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on("exit", (code, signal) => {
      running.delete(service)
      done({ code, signal })
      for (const wake of waiters) wake()
    })
  )
  const pid = child.pid ?? 0
  const waitForLine = (pattern: RegExp, timeoutMs = 60_000) =>
    new Promise<string>((found, failed) => {
      const check = () => {
        const line = lines.find((l) => pattern.test(l))
        if (line !== undefined) {
          stop()
          found(line)
        } else if (child.exitCode !== null || child.signalCode !== null) {
          stop()
          failed(new Error(`the service exited before printing ${pattern}:\n${lines.join("\n")}`))
        }
      }
      const timer = setTimeout(() => {
        stop()
        failed(new Error(`no line ${pattern} within ${timeoutMs} ms:\n${lines.join("\n")}`))
      }, timeoutMs)
      const stop = () => {
        clearTimeout(timer)
        waiters.delete(check)
      }
      waiters.add(check)
      check()
    })
  const service: ServiceProcess = {
    child,
    pid,
    lines,
    waitForLine,
    exit,
    signal: (signal, target = "process") => process.kill(target === "group" ? -pid : pid, signal)
  }
  running.add(service)
  return service
}

/** The key as TOKEN_ENCRYPTION_KEYS spells it. */
export const keyVariable = (key: EncryptionKey) => `${key.id}:${Buffer.from(Redacted.value(key.key)).toString("base64")}`

/** Runs `f` with the repository of the database at `url`, sealing with `key`. */
export const withRepository = <A, E>(url: Redacted.Redacted | string, key: EncryptionKey, f: (repo: ConnectionRepository) => Effect.Effect<A, E, ConnectionRepository>) =>
  Effect.runPromise(
    Effect.flatMap(ConnectionRepository, f).pipe(
      Effect.provide(ConnectionRepository.DefaultWithoutDependencies),
      Effect.provide(TokenCipher.Default),
      Effect.provide(pgClientLayer(typeof url === "string" ? Redacted.make(url) : url, testPool)),
      Effect.provide(testConfig({ encryptionKeys: [key] })),
      Effect.scoped
    )
  )

/** Stores, for each user, a connection to `fake` with a token pair it issued, expiring in a minute (due for the monitor). */
export const seedDue = (url: Redacted.Redacted | string, key: EncryptionKey, fake: FakeOAuthPlatform, platform: string, users: ReadonlyArray<string>) =>
  withRepository(url, key, () => seedDueConnections(fake, platform, users))

/** Each user's connection as stored, with its tokens decrypted. */
export const storedConnections = (url: Redacted.Redacted | string, key: EncryptionKey, platform: string, users: ReadonlyArray<string>) =>
  withRepository(url, key, (repo) =>
    Effect.forEach(users, (userId) =>
      Effect.flatMap(repo.findByUserAndPlatform(userId, platform), (rows) => {
        const row = rows[0]
        if (row === undefined) return Effect.dieMessage(`no connection for ${userId}`)
        return Effect.map(Effect.either(repo.tokens(row)), (tokens) => ({
          userId,
          status: row.status,
          lastRefreshedAt: row.lastRefreshedAt,
          accessToken: tokens._tag === "Right" ? Redacted.value(tokens.right.accessToken) : undefined,
          refreshToken: tokens._tag === "Right" ? Option.getOrUndefined(Option.map(tokens.right.refreshToken, Redacted.value)) : undefined
        }))
      }), { concurrency: 10 }))

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms))

/** Polls `check` until it holds, or fails after `timeoutMs`. */
export const eventually = async (check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) => {
  const until = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}

/** What every service process of a test is given: development, the test's encryption key, an API key, any free port. */
export const serviceEnv = (key: EncryptionKey): Record<string, string> => ({
  DEPLOY_ENV: "development",
  FRONTEND_URL: FRONTEND,
  HOST: "127.0.0.1",
  PORT: "0",
  TOKEN_ENCRYPTION_KEYS: keyVariable(key),
  API_KEYS: "process-test-api-key-0123456789"
})

/** A fresh, migrated database on the test server, dropped once the test is done. */
export const migratedDatabase = async () => {
  const scope = Effect.runSync(Scope.make())
  onTestFinished(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  const url = await Effect.runPromise(Scope.extend(freshDatabase, scope))
  await Effect.runPromise(migrate().pipe(Effect.provide(pgClientLayer(Redacted.make(url), testPool)), Effect.orDie))
  return url
}
