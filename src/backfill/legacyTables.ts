import { Either, Option, Redacted } from "effect"
import { fernetDecrypt, type FernetKey, looksLikeFernet } from "../crypto/fernet.js"
import type { ImportRequest } from "../integrations/importPolicy.js"
import { parseLegacyTime } from "./legacyTime.js"

/** A row of a legacy table, as SQLite gives it: column name to value. */
export type LegacyRow = Readonly<Record<string, unknown>>

/** What one legacy row gives: an import (with what decides between a user's rows), a skip, or a failure. */
export type RowReading =
  | {
    readonly _tag: "Import"
    readonly request: ImportRequest
    /** Whether the row was the legacy code's live one (is_active; rows of versions without the column are). */
    readonly active: boolean
    /** When the row last changed: of a user's rows, the newest active one wins. */
    readonly changedAt: number
  }
  | { readonly _tag: "Skipped"; readonly reason: string }
  | { readonly _tag: "Failed"; readonly problem: string }

/** The legacy tables, what platform each holds, and how a row of it reads. */
export interface LegacyTable {
  readonly table: string
  readonly platform: string
  /** The legacy code kept one row per callback: several per user, the newest active one live. */
  readonly manyPerUser: boolean
  readonly read: (row: LegacyRow, keys: ReadonlyArray<FernetKey>) => RowReading
}

const failed = (problem: string): RowReading => ({ _tag: "Failed", problem })

class RowProblem {
  constructor(readonly problem: string) {}
}

const text = (row: LegacyRow, column: string): string | null => {
  const value = row[column]
  if (value === null || value === undefined) return null
  const s = typeof value === "string" ? value : typeof value === "number" || typeof value === "bigint" ? String(value) : null
  if (s === null) throw new RowProblem(`${column} is not text`)
  return s.trim() === "" ? null : s
}

const time = (row: LegacyRow, column: string): Date | null =>
  Either.getOrElse(parseLegacyTime(row[column]), (why) => {
    throw new RowProblem(`${column}: ${why}`)
  })

/** A token column: plaintext as it is, a Fernet token opened; one that looks like Fernet but does not verify is a problem. */
const token = (row: LegacyRow, column: string, keys: ReadonlyArray<FernetKey> | null): Option.Option<Redacted.Redacted<string>> => {
  const value = text(row, column)
  if (value === null) return Option.none()
  if (keys === null || !looksLikeFernet(value)) return Option.some(Redacted.make(value))
  return Either.match(fernetDecrypt(value, keys), {
    onLeft: (why) => {
      throw new RowProblem(`${column} is a Fernet token that cannot be opened: ${why}`)
    },
    onRight: (plain) => Option.some(Redacted.make(plain))
  })
}

/** is_active as SQLite stores a BOOLEAN (0/1, or text); a table without the column has only live rows. */
const isActive = (row: LegacyRow) => {
  if (!("is_active" in row) || row["is_active"] === null) return true
  const value = row["is_active"]
  return !(value === 0 || value === 0n || value === false || value === "0" || String(value).toLowerCase() === "false")
}

const reading = (build: () => RowReading): RowReading => {
  try {
    return build()
  } catch (e) {
    if (e instanceof RowProblem) return failed(e.problem)
    throw e
  }
}

const changedAt = (updated: Date | null, created: Date | null, row: LegacyRow) =>
  updated?.getTime() ?? created?.getTime() ?? Number(row["id"] ?? 0)

/** A row's times, read once: what a table's extras may derive an expiry from. */
interface RowTimes {
  readonly created: Date | null
  readonly updated: Date | null
  /** The row's expires_at. */
  readonly stated: Date | null
}

/**
 * The per-callback tables (Bing, WordPress.com, Wix): shared columns, each platform's own
 * extras; `fernet`: whether its token columns may hold Fernet tokens (the later legacy code
 * encrypted them).
 */
const tokensTable = (
  table: string,
  platform: string,
  fernet: boolean,
  extras: (row: LegacyRow, times: RowTimes) => { readonly accountId: string; readonly providerData: Record<string, unknown>; readonly expiresAt: Date | null }
): LegacyTable => ({
  table,
  platform,
  manyPerUser: true,
  read: (row, keys) =>
    reading(() => {
      const userId = text(row, "user_id")
      if (userId === null) return failed("user_id is empty")
      const accessToken = token(row, "access_token", fernet ? keys : null)
      const refreshToken = token(row, "refresh_token", fernet ? keys : null)
      const created = time(row, "created_at")
      const updated = time(row, "updated_at")
      const stated = time(row, "expires_at")
      const more = extras(row, { created, updated, stated })
      if (Option.isNone(accessToken) && Option.isNone(refreshToken)) return { _tag: "Skipped", reason: "no token" }
      return {
        _tag: "Import",
        active: isActive(row),
        changedAt: changedAt(updated, created, row),
        request: {
          userId,
          platform,
          accountId: more.accountId,
          accessToken,
          refreshToken,
          tokenType: text(row, "token_type"),
          scope: text(row, "scope"),
          expiresAt: more.expiresAt,
          providerData: more.providerData,
          updatedAt: updated ?? created
        }
      }
    })
})

const withoutNulls = (data: Record<string, unknown>) => Object.fromEntries(Object.entries(data).filter(([, v]) => v !== null))

/** GSC: one row per user, the google-auth Credentials as JSON; its client_secret is never read out. */
const gsc: LegacyTable = {
  table: "gsc_credentials",
  platform: "gsc",
  manyPerUser: false,
  read: (row) =>
    reading(() => {
      const userId = text(row, "user_id")
      if (userId === null) return failed("user_id is empty")
      const json = text(row, "credentials_json")
      if (json === null) return { _tag: "Skipped", reason: "no token" }
      let credentials: unknown
      try {
        credentials = JSON.parse(json)
      } catch {
        return failed("credentials_json is not JSON")
      }
      if (credentials === null || typeof credentials !== "object" || Array.isArray(credentials)) return failed("credentials_json is not an object")
      const fields = credentials as Record<string, unknown>
      const field = (name: string) => {
        const value = fields[name]
        return typeof value === "string" && value !== "" ? Option.some(Redacted.make(value)) : Option.none()
      }
      const accessToken = field("token")
      const refreshToken = field("refresh_token")
      if (Option.isNone(accessToken) && Option.isNone(refreshToken)) return { _tag: "Skipped", reason: "no token" }
      const scopes = fields["scopes"]
      const scope = Array.isArray(scopes) ? scopes.filter((s): s is string => typeof s === "string").join(" ") : typeof scopes === "string" ? scopes : null
      const created = time(row, "created_at")
      const updated = time(row, "updated_at")
      return {
        _tag: "Import",
        active: true,
        changedAt: changedAt(updated, created, row),
        request: {
          userId,
          platform: "gsc",
          accountId: "",
          accessToken,
          refreshToken,
          tokenType: "Bearer",
          scope: scope === "" ? null : scope,
          // The legacy JSON holds no expiry: refreshed at the next monitor pass.
          expiresAt: null,
          providerData: {},
          updatedAt: updated ?? created
        }
      }
    })
}

const bing = tokensTable("bing_oauth_tokens", "bing", false, (row, { stated }) => {
  const site = text(row, "site_url")
  return { accountId: "", providerData: site === null ? {} : { sites: [{ url: site, verified: null }] }, expiresAt: stated }
})

// The legacy expires_at of WordPress.com was a guess (14 days), not the platform's word: the
// token is taken as not expiring and validated, as the service does with its own.
const wordpress = tokensTable("wordpress_oauth_tokens", "wordpress", true, (row) => {
  const blogId = text(row, "blog_id")
  const blogUrl = text(row, "blog_url")
  const numeric = blogId !== null && /^\d+$/.test(blogId) ? Number(blogId) : blogId
  return { accountId: blogId ?? "", providerData: withoutNulls({ blog_id: numeric, blog_url: blogUrl }), expiresAt: null }
})

const wix = tokensTable("wix_oauth_tokens", "wix", true, (row, { created, stated, updated }) => {
  // Rows without expires_at may still say how long the token lived from when it was stored.
  const lifetime = row["expires_in"]
  const issued = updated ?? created
  const derived = typeof lifetime === "number" && lifetime > 0 && issued !== null ? new Date(issued.getTime() + lifetime * 1000) : null
  return {
    accountId: "",
    providerData: withoutNulls({ site_id: text(row, "site_id"), member_id: text(row, "member_id") }),
    expiresAt: stated ?? derived
  }
})

export const legacyTables: ReadonlyArray<LegacyTable> = [gsc, bing, wordpress, wix]
