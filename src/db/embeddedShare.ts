import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from "node:fs"
import { join } from "node:path"
import { Duration, Effect, Schedule } from "effect"
import { ConfigInvalid } from "../config/ConfigInvalid.js"
import { isSameProcess, startTimeOf } from "./embeddedGuards.js"

/**
 * How processes of the service share one embedded server on one data directory: beside the
 * directory, `<dir>.lock` serialises starting and stopping it, and `<dir>.users/` holds one
 * file per process using it (pid and start time). The first process starts the server, later
 * ones connect to it, and the last one to leave stops it. A process that died (kill -9)
 * leaves its file behind; it is recognised as dead and dropped by the next process.
 */

/** This process, as the files record it. */
const self = () => `${process.pid} ${startTimeOf(process.pid) ?? ""}`.trim()

const holder = (text: string) => {
  const [pid, startTime] = text.trim().split(" ")
  const n = Number(pid)
  return Number.isInteger(n) && n > 0 ? { pid: n, startTime } : undefined
}

const alive = (text: string) => {
  const found = holder(text)
  return found !== undefined && isSameProcess(found.pid, found.startTime)
}

const readText = (path: string) => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return undefined
  }
}

const codeOf = (error: unknown) =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string" ? error.code : undefined

/** Takes the lock when it is free or its holder is dead; "held" while a live process holds it. */
const tryLock = (path: string): "taken" | "held" => {
  try {
    const fd = openSync(path, "wx", 0o644)
    try {
      writeSync(fd, `${self()}\n`)
    } finally {
      closeSync(fd)
    }
    return "taken"
  } catch (error) {
    if (codeOf(error) !== "EEXIST") throw error
  }
  const text = readText(path)
  // Written between its creation and our read: give the writer a moment.
  if (text === undefined || text.trim() === "" || alive(text)) return "held"
  rmSync(path, { force: true })
  return tryLock(path)
}

/** Starting a server (initdb included) takes seconds; this bounds a wait behind a stuck one. */
const LOCK_WAIT = Duration.minutes(2)

/** Runs `effect` holding the data directory's start/stop lock. */
export const withStartLock = <A, E, R>(dataDir: string, effect: Effect.Effect<A, E, R>) => {
  const path = `${dataDir}.lock`
  const acquire = Effect.try({
    try: () => tryLock(path),
    catch: (error) => new ConfigInvalid({ problems: [`EMBEDDED_DATABASE_DIR: cannot create the lock file ${path} (${codeOf(error) ?? "unknown"})`] })
  }).pipe(
    Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (state) => state === "taken" }),
    Effect.timeoutFail({
      duration: LOCK_WAIT,
      onTimeout: () =>
        new ConfigInvalid({
          problems: [`EMBEDDED_DATABASE_DIR: another process (${readText(path)?.trim() ?? "?"}) has been starting or stopping the embedded PostgreSQL for ${Duration.format(LOCK_WAIT)}; stop it, or delete ${path} if no such process runs`]
        })
    })
  )
  const release = Effect.sync(() => {
    if (readText(path)?.trim() === self()) rmSync(path, { force: true })
  })
  return Effect.acquireUseRelease(acquire, () => effect, () => release)
}

const usersDir = (dataDir: string) => `${dataDir}.users`

/** Records this process as a user of the server. */
export const joinUsers = (dataDir: string) =>
  Effect.sync(() => {
    mkdirSync(usersDir(dataDir), { recursive: true })
    const fd = openSync(join(usersDir(dataDir), String(process.pid)), "w", 0o644)
    try {
      writeSync(fd, `${self()}\n`)
    } finally {
      closeSync(fd)
    }
  })

/** Removes this process from the users. */
export const leaveUsers = (dataDir: string) => Effect.sync(() => rmSync(join(usersDir(dataDir), String(process.pid)), { force: true }))

/** The live processes using the server, this one excluded; the files of dead ones are removed. */
export const otherUsers = (dataDir: string) =>
  Effect.sync(() => {
    const dir = usersDir(dataDir)
    let names: Array<string>
    try {
      names = readdirSync(dir)
    } catch {
      return []
    }
    const live: Array<number> = []
    for (const name of names) {
      const path = join(dir, name)
      const text = readText(path)
      const found = text === undefined ? undefined : holder(text)
      if (found === undefined || !isSameProcess(found.pid, found.startTime)) rmSync(path, { force: true })
      else if (found.pid !== process.pid) live.push(found.pid)
    }
    return live
  })
