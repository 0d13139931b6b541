import { readdirSync, statSync } from "node:fs"
import { join } from "node:path"

/**
 * The legacy databases to read: the files named, and under a workspace directory every
 * per-user database the legacy code kept there (workspace_<id>/db/alwrity_<id>.db); the shared
 * alwrity.db when neither is given.
 */
export const legacyFiles = (files: ReadonlyArray<string>, workspace: string | undefined): ReadonlyArray<string> => {
  const found = [...files]
  if (workspace !== undefined) {
    for (const entry of readdirSync(workspace).sort()) {
      const id = /^workspace_(.+)$/.exec(entry)?.[1]
      if (id === undefined) continue
      const file = join(workspace, entry, "db", `alwrity_${id}.db`)
      if (statSync(file, { throwIfNoEntry: false })?.isFile() === true) found.push(file)
    }
  }
  return found.length === 0 && workspace === undefined ? ["alwrity.db"] : found
}
