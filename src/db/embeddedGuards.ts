import { execFileSync } from "node:child_process"
import { readFileSync, realpathSync, statSync } from "node:fs"
import { basename, dirname, parse, resolve } from "node:path"
import { Duration, Effect, Option, Schedule } from "effect"

/** Alive, and not a zombie waiting to be reaped (that one answers signals but holds nothing). */
export const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return true
  }
}

/**
 * When the process started, in clock ticks since boot (field 22 of /proc/<pid>/stat), so that
 * a pid reused by another process is told apart; undefined where /proc cannot tell.
 */
export const startTimeOf = (pid: number): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]
  } catch {
    return undefined
  }
}

/** A process named by its pid and start time: alive, and the very process that was recorded. */
export const isSameProcess = (pid: number, startTime: string | undefined) => {
  if (!isAlive(pid)) return false
  const now = startTimeOf(pid)
  return startTime === undefined || now === undefined || now === startTime
}

/** The pid on the first line of PostgreSQL's postmaster.pid, if the file exists and holds one. */
export const pidFromFile = (pidFile: string): number | undefined => readPostmaster(pidFile)?.pid

/** What a server's postmaster.pid says: its pid, port (line 4) and status (line 8: starting, ready, stopping). */
export interface Postmaster {
  readonly pid: number
  readonly port: number | undefined
  readonly status: string
}

export const readPostmaster = (pidFile: string): Postmaster | undefined => {
  let lines: Array<string>
  try {
    lines = readFileSync(pidFile, "utf8").split("\n")
  } catch {
    return undefined
  }
  const pid = Number(lines[0])
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  const port = Number(lines[3])
  return { pid, port: Number.isInteger(port) && port > 0 ? port : undefined, status: (lines[7] ?? "").trim() }
}

const samePath = (a: string, b: string) => {
  try {
    return realpathSync(a) === realpathSync(b)
  } catch {
    return resolve(a) === resolve(b)
  }
}

/**
 * What the live process `pid` is: a PostgreSQL server on `dataDir` (left running by a run that
 * crashed), another process (the pid was reused: the pid file is stale), or unknown when
 * /proc cannot tell (not Linux).
 */
export const identify = (pid: number, dataDir: string): "ours" | "other" | "unknown" => {
  let argv: Array<string>
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
  } catch {
    return "unknown"
  }
  const flag = argv.indexOf("-D")
  const dir = flag >= 0 ? argv[flag + 1] : undefined
  return basename(argv[0] ?? "") === "postgres" && dir !== undefined && samePath(dir, dataDir) ? "ours" : "other"
}

const exited = (pid: number, within: Duration.DurationInput) =>
  Effect.sync(() => isAlive(pid)).pipe(
    Effect.repeat({ schedule: Schedule.spaced("100 millis"), while: (alive) => alive }),
    Effect.timeoutOption(within),
    Effect.map(Option.isSome)
  )

/**
 * Stops a PostgreSQL server: a fast shutdown (SIGINT), then SIGKILL if it has not exited in
 * time. Returns whether it is gone.
 */
export const stopServer = (pid: number) =>
  Effect.gen(function*() {
    process.kill(pid, "SIGINT")
    if (yield* exited(pid, "15 seconds")) return true
    yield* Effect.logWarning(`the PostgreSQL server (pid ${pid}) did not stop in time: killing it`)
    process.kill(pid, "SIGKILL")
    return yield* exited(pid, "5 seconds")
  }).pipe(Effect.catchAllDefect(() => Effect.succeed(!isAlive(pid))))

export interface Account {
  readonly name: string
  readonly uid: number
  readonly gid: number
}

/** The unprivileged user PostgreSQL runs as when the service runs as root; -1 ids while it does not exist. */
export const postgresAccount = (): Account => {
  const id = (flag: string) => {
    try {
      return Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim())
    } catch {
      return -1
    }
  }
  return { name: "postgres", uid: id("-u"), gid: id("-g") }
}

/**
 * The first existing parent of `dataDir` that `account` may not enter (no x permission for it),
 * with its mode; undefined when the whole way is open. The data directory itself is handed to
 * that user, and missing parents are created open (0755).
 */
export const closedParent = (dataDir: string, account: Account): { readonly path: string; readonly mode: number } | undefined => {
  const parents: Array<string> = []
  for (let dir = dirname(dataDir); ; dir = dirname(dir)) {
    parents.unshift(dir)
    if (dir === parse(dir).root) break
  }
  for (const path of parents) {
    let stat
    try {
      stat = statSync(path)
    } catch {
      return undefined
    }
    const bit = stat.uid === account.uid ? 0o100 : stat.gid === account.gid ? 0o010 : 0o001
    if ((stat.mode & bit) === 0) return { path, mode: stat.mode & 0o777 }
  }
  return undefined
}

/**
 * The account PostgreSQL runs as under root, created (group and user "postgres", no login
 * shell needed) when the machine has none: PostgreSQL refuses to run as root.
 */
export const ensurePostgresAccount = (): Account | string => {
  const found = postgresAccount()
  if (found.uid >= 0 && found.gid >= 0) return found
  try {
    // -f: success when the group exists already.
    execFileSync("groupadd", ["-f", "--system", "postgres"], { stdio: "ignore" })
    execFileSync("useradd", ["--system", "--gid", "postgres", "--no-create-home", "postgres"], { stdio: "ignore" })
  } catch (error) {
    return `there is no user "postgres" to run PostgreSQL as (it refuses root), and creating one failed (${error instanceof Error ? error.message.split("\n")[0] : "unknown"})`
  }
  const created = postgresAccount()
  return created.uid >= 0 ? created : "the user \"postgres\" was created but cannot be found"
}
