import { execFileSync } from "node:child_process"
import { chmodSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Cause, Effect, Exit, Option, Redacted, Scope } from "effect"
import type { TestProject } from "vitest/node"
import { ConfigInvalid } from "../../src/config/ConfigInvalid.js"
import { startEmbeddedPostgres } from "../../src/db/embedded.js"

declare module "vitest" {
  export interface ProvidedContext {
    /** A PostgreSQL server the tests may create databases on: DATABASE_URL, or an embedded one. */
    adminDatabaseUrl: string
  }
}

/**
 * Tests that run the service as a real process run dist/main.js: built here, once per run,
 * from the sources under test. Type errors are `npm test`'s first step to report; tsc emits
 * in spite of them, so they do not stop the build here.
 */
const build = () => {
  try {
    execFileSync(join("node_modules", ".bin", "tsc"), ["-p", "tsconfig.build.json"], { stdio: "ignore" })
  } catch {
    // Reported by `tsc -p .`; what was emitted is run.
  }
}

/** With DATABASE_URL set the tests use that server; otherwise one embedded PostgreSQL for the run. */
export default async function setup(project: TestProject) {
  build()
  const configured = process.env["DATABASE_URL"]
  if (configured !== undefined && configured !== "") {
    project.provide("adminDatabaseUrl", configured)
    return
  }
  const dir = mkdtempSync(join(tmpdir(), "oauth-integrations-test-"))
  chmodSync(dir, 0o755) // PostgreSQL runs as its own user when the tests run as root
  const scope = Effect.runSync(Scope.make())
  const started = await Effect.runPromiseExit(Scope.extend(startEmbeddedPostgres(join(dir, "pg")), scope))
  if (Exit.isFailure(started)) {
    // Said here, plainly: a failed global setup is otherwise reported by vitest as little more than its exit code.
    const failure = Option.getOrUndefined(Cause.failureOption(started.cause))
    const reason = failure instanceof ConfigInvalid ? failure.problems.join("\n") : Cause.pretty(started.cause)
    process.stderr.write(`\nThe tests need PostgreSQL: DATABASE_URL is unset, and the embedded PostgreSQL could not start:\n${reason}\n\n`)
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`embedded PostgreSQL: ${reason}`)
  }
  project.provide("adminDatabaseUrl", Redacted.value(started.value))
  return async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    rmSync(dir, { recursive: true, force: true })
  }
}
