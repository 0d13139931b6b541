import { mkdirSync } from "node:fs"
import { join } from "node:path"
import Database from "better-sqlite3"

/** The legacy framework's DDL, as its code created the tables. */
export const LEGACY_DDL = {
  gsc: `create table gsc_credentials (
    user_id TEXT PRIMARY KEY, credentials_json TEXT NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)`,
  bing: `create table bing_oauth_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, access_token TEXT NOT NULL, refresh_token TEXT,
    token_type TEXT DEFAULT 'bearer', expires_at TIMESTAMP, scope TEXT, site_url TEXT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, is_active BOOLEAN DEFAULT TRUE)`,
  wordpress: `create table wordpress_oauth_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, access_token TEXT NOT NULL, refresh_token TEXT,
    token_type TEXT DEFAULT 'bearer', expires_at TIMESTAMP, scope TEXT, blog_id TEXT, blog_url TEXT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, is_active BOOLEAN DEFAULT TRUE)`,
  wix: `create table wix_oauth_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, access_token TEXT NOT NULL, refresh_token TEXT,
    token_type TEXT DEFAULT 'bearer', expires_at TIMESTAMP, expires_in INTEGER, scope TEXT, site_id TEXT, member_id TEXT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, is_active BOOLEAN DEFAULT TRUE)`,
  /** An older version's Wix table: no expires_in, site_id, member_id nor is_active. */
  wixOld: `create table wix_oauth_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, access_token TEXT NOT NULL, refresh_token TEXT,
    token_type TEXT DEFAULT 'bearer', expires_at TIMESTAMP, scope TEXT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)`
} as const

export type LegacyValue = string | number | null

/** A legacy database at `file` with the given tables and rows (column name to value). */
export const writeLegacyDatabase = (
  file: string,
  tables: ReadonlyArray<{ readonly ddl: string; readonly rows?: ReadonlyArray<Readonly<Record<string, LegacyValue>>> }>
) => {
  const db = new Database(file)
  try {
    // One transaction: a commit per row would make a large table take seconds.
    db.transaction(() => {
      for (const { ddl, rows = [] } of tables) {
        db.exec(ddl)
        const table = /create table (\w+)/.exec(ddl)?.[1] ?? ""
        for (const row of rows) {
          const columns = Object.keys(row)
          db.prepare(`insert into ${table} (${columns.join(", ")}) values (${columns.map(() => "?").join(", ")})`).run(...columns.map((c) => row[c] ?? null))
        }
      }
    })()
  } finally {
    db.close()
  }
  return file
}

/** workspace/workspace_<id>/db/alwrity_<id>.db, as the legacy code laid out its per-user databases. */
export const workspaceFile = (workspace: string, id: string) => {
  const dir = join(workspace, `workspace_${id}`, "db")
  mkdirSync(dir, { recursive: true })
  return join(dir, `alwrity_${id}.db`)
}
