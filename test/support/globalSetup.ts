import { chmodSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Redacted, Scope } from "effect"
import type { TestProject } from "vitest/node"
import { startEmbeddedPostgres } from "../../src/db/embedded.js"

declare module "vitest" {
  export interface ProvidedContext {
    /** A PostgreSQL server the tests may create databases on: DATABASE_URL, or an embedded one. */
    adminDatabaseUrl: string
  }
}

/** With DATABASE_URL set the tests use that server; otherwise one embedded PostgreSQL for the run. */
export default async function setup(project: TestProject) {
  const configured = process.env["DATABASE_URL"]
  if (configured !== undefined && configured !== "") {
    project.provide("adminDatabaseUrl", configured)
    return
  }
  const dir = mkdtempSync(join(tmpdir(), "oauth-integrations-test-"))
  chmodSync(dir, 0o755) // PostgreSQL runs as its own user when the tests run as root
  const scope = Effect.runSync(Scope.make())
  const url = await Effect.runPromise(Scope.extend(startEmbeddedPostgres(join(dir, "pg")), scope))
  project.provide("adminDatabaseUrl", Redacted.value(url))
  return async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    rmSync(dir, { recursive: true, force: true })
  }
}
