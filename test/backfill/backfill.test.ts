import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Either, Option, Redacted } from "effect"
import { type BackfillReport, type BackfillReporter, runBackfill } from "../../src/backfill/Backfill.js"
import { legacyFiles } from "../../src/backfill/sources.js"
import { fernetEncrypt, parseFernetKey } from "../../src/crypto/fernet.js"
import { ConnectionRepository } from "../../src/db/ConnectionRepository.js"
import { EventsResponse } from "../../src/http/schemas.js"
import type { Instance } from "../support/app.js"
import { call, json } from "../support/flow.js"
import { Harness, HarnessLive } from "../support/harness.js"
import { LEGACY_DDL, workspaceFile, writeLegacyDatabase } from "./legacy.js"

const FERNET = Either.getOrThrow(parseFernetKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="))
const sealed = (plain: string) => fernetEncrypt(FERNET, plain, 1_700_000_000, Buffer.alloc(16, 7))
const CLIENT_SECRET = "legacy-client-secret-never-printed"

const run = (instance: Instance, files: ReadonlyArray<string>, options: { readonly dryRun?: boolean; readonly verify?: boolean; readonly platforms?: ReadonlyArray<string> } = {}) =>
  Effect.gen(function*() {
    const problems: Array<string> = []
    const progress = { total: 0, done: 0 }
    const reporter: BackfillReporter = {
      total: (n) => Effect.sync(() => void (progress.total += n)),
      advance: (n) => Effect.sync(() => void (progress.done += n)),
      problem: (line) => Effect.sync(() => void problems.push(line))
    }
    const report: BackfillReport = yield* runBackfill({
      files,
      dryRun: options.dryRun ?? false,
      verify: options.verify ?? false,
      platforms: options.platforms ?? [],
      fernetKeys: () => [FERNET]
    }, reporter).pipe(Effect.provide(instance.context))
    return { report, problems, progress }
  })

const stored = (instance: Instance, userId: string, platform: string) =>
  Effect.gen(function*() {
    const repository = yield* ConnectionRepository
    const rows = yield* repository.findByUserAndPlatform(userId, platform)
    return yield* Effect.forEach(rows, (row) =>
      Effect.map(Effect.either(repository.tokens(row)), (tokens) => ({
        row,
        access: Either.isRight(tokens) ? Redacted.value(tokens.right.accessToken) : null,
        refresh: Either.isRight(tokens) ? Option.getOrNull(Option.map(tokens.right.refreshToken, Redacted.value)) : null
      })))
  }).pipe(Effect.provide(instance.context), Effect.orDie)

const importedEvents = (instance: Instance, userId: string) =>
  Effect.map(Effect.flatMap(call(instance, `/v1/users/${userId}/events`), (r) => json(r, EventsResponse)), (b) => b.events.filter((e) => e.kind === "imported").length)

const digest = (file: string) => ({ hash: createHash("sha256").update(readFileSync(file)).digest("hex"), mtime: statSync(file).mtimeMs })

describe("backfill from the legacy SQLite databases", () => {
  layer(HarnessLive(), { excludeTestServices: true, timeout: "90 seconds" })((it) => {
    it.effect("brings every expected connection over from both layouts, reports what it skipped, and a re-run imports nothing new", () =>
      Effect.gen(function*() {
        const { fakes, instance } = yield* Harness
        const dir = mkdtempSync(join(tmpdir(), "legacy-"))
        const gsc = fakes.gsc.mint()
        const bingOld = fakes.bing.mint()
        const bingNew = fakes.bing.mint()
        const bingInactive = fakes.bing.mint()
        const wp = fakes.wordpress.mint()
        const wix = fakes.wix.mint()
        const shared = writeLegacyDatabase(join(dir, "alwrity.db"), [
          {
            ddl: LEGACY_DDL.gsc,
            rows: [
              {
                user_id: "lg-1",
                credentials_json: JSON.stringify({
                  token: gsc.accessToken,
                  refresh_token: gsc.refreshToken,
                  token_uri: "https://oauth2.googleapis.com/token",
                  client_id: "legacy-client",
                  client_secret: CLIENT_SECRET,
                  scopes: ["https://www.googleapis.com/auth/webmasters.readonly"]
                }),
                created_at: "2025-01-10 09:00:00",
                updated_at: "2025-01-15T10:30:00.123456"
              },
              { user_id: "lg-2", credentials_json: "{not json", updated_at: "2025-01-15 10:30:00" }
            ]
          },
          {
            ddl: LEGACY_DDL.bing,
            rows: [
              { user_id: "lb-1", access_token: bingOld.accessToken, refresh_token: bingOld.refreshToken ?? null, expires_at: "2025-01-01 10:00:00", site_url: "https://old.example", updated_at: "2025-01-01 09:00:00", is_active: 1 },
              { user_id: "lb-1", access_token: bingNew.accessToken, refresh_token: bingNew.refreshToken ?? null, expires_at: "2025-02-01T11:00:00+00:00", site_url: "https://new.example", updated_at: "2025-02-01T10:00:00Z", is_active: 1 },
              { user_id: "lb-1", access_token: bingInactive.accessToken, refresh_token: null, site_url: "https://gone.example", updated_at: "2025-03-01 10:00:00", is_active: 0 },
              { user_id: "lb-2", access_token: "x", refresh_token: "y", expires_at: "next tuesday", updated_at: "2025-01-01 09:00:00" }
            ]
          },
          {
            ddl: LEGACY_DDL.wordpress,
            rows: [
              // Fernet-encrypted by the later legacy code; its expires_at was a 14-day guess.
              { user_id: "lw-1", access_token: sealed(wp.accessToken), expires_at: "2025-01-29 10:00:00", blog_id: "12345", blog_url: "https://blog.example", updated_at: "2025-01-15 10:00:00" },
              // Looks like Fernet, does not verify under the key: a per-row failure, not a crash.
              { user_id: "lw-2", access_token: fernetEncrypt(Either.getOrThrow(parseFernetKey("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")), "other", 1_700_000_000, Buffer.alloc(16, 1)), blog_id: "9" }
            ]
          },
          // An older version's table: without the columns added later.
          { ddl: LEGACY_DDL.wixOld, rows: [{ user_id: "lx-1", access_token: wix.accessToken, refresh_token: wix.refreshToken ?? null, expires_at: "2025-01-15 11:00:00", updated_at: "2025-01-15 10:00:00" }] }
        ])
        const workspace = join(dir, "workspace")
        const gsc9 = fakes.gsc.mint()
        writeLegacyDatabase(workspaceFile(workspace, "lg-9"), [
          { ddl: LEGACY_DDL.gsc, rows: [{ user_id: "lg-9", credentials_json: JSON.stringify({ token: gsc9.accessToken, refresh_token: gsc9.refreshToken }) }] },
          { ddl: LEGACY_DDL.bing }
        ])
        const corrupt = join(dir, "corrupt.db")
        writeFileSync(corrupt, "this is not an SQLite database, only bytes that look nothing like one".repeat(20))
        const files = [shared, ...legacyFiles([], workspace), corrupt]
        expect(files).toHaveLength(3)
        const before = digest(shared)

        const { problems, progress, report } = yield* run(instance, files)
        expect(report.failed).toBe(true)
        expect(report.unreadableFiles).toBe(1)
        const t = (p: string) => report.tallies.get(p)
        expect(t("gsc")).toMatchObject({ found: 3, imported: 2, failed: 1 })
        expect(t("bing")).toMatchObject({ found: 4, imported: 1, superseded: 2, failed: 1 })
        expect(t("wordpress")).toMatchObject({ found: 2, imported: 1, failed: 1 })
        expect(t("wix")).toMatchObject({ found: 1, imported: 1, failed: 0 })
        expect(progress.done).toBe(progress.total)
        expect(progress.total).toBe(10)
        expect(problems.some((p) => p.includes("bing_oauth_tokens") && p.includes("expires_at"))).toBe(true)
        expect(problems.some((p) => p.includes("gsc_credentials") && p.includes("credentials_json"))).toBe(true)
        expect(problems.some((p) => p.includes("wordpress_oauth_tokens") && p.includes("Fernet"))).toBe(true)
        expect(problems.some((p) => p.startsWith(corrupt))).toBe(true)
        // Nothing secret is ever printed.
        const printed = [...problems, report.summary].join("\n")
        for (const secret of [CLIENT_SECRET, gsc.accessToken, bingNew.accessToken, wp.accessToken, wix.accessToken, "x", "y"].filter((s) => s.length > 1)) {
          expect(printed).not.toContain(secret)
        }

        const [g] = yield* stored(instance, "lg-1", "gsc")
        expect(g).toMatchObject({ access: gsc.accessToken, refresh: gsc.refreshToken })
        expect(g?.row.scope).toBe("https://www.googleapis.com/auth/webmasters.readonly")
        expect((yield* stored(instance, "lg-9", "gsc"))[0]?.access).toBe(gsc9.accessToken)
        const b = yield* stored(instance, "lb-1", "bing")
        expect(b).toHaveLength(1)
        expect(b[0]).toMatchObject({ access: bingNew.accessToken, refresh: bingNew.refreshToken })
        expect(b[0]?.row.providerData).toEqual({ sites: [{ url: "https://new.example", verified: null }] })
        expect(b[0]?.row.expiresAt?.toISOString()).toBe("2025-02-01T11:00:00.000Z")
        const w = yield* stored(instance, "lw-1", "wordpress")
        expect(w[0]).toMatchObject({ access: wp.accessToken, refresh: null })
        expect(w[0]?.row.accountId).toBe("12345")
        expect(w[0]?.row.providerData).toEqual({ blog_id: 12345, blog_url: "https://blog.example" })
        // The guessed expiry is not kept: the token is validated before it counts as connected.
        expect(w[0]?.row.expiresAt).toBeNull()
        expect(w[0]?.row.unverified).toBe(true)
        expect((yield* stored(instance, "lx-1", "wix"))[0]).toMatchObject({ access: wix.accessToken })
        expect(yield* stored(instance, "lb-2", "bing")).toEqual([])

        // The sources are read, never written.
        expect(digest(shared)).toEqual(before)

        const again = yield* run(instance, files)
        expect(again.report.tallies.get("bing")).toMatchObject({ imported: 0, updated: 0, unchanged: 1, superseded: 2 })
        expect(again.report.tallies.get("gsc")).toMatchObject({ imported: 0, updated: 0, unchanged: 2 })
        expect(again.report.tallies.get("wordpress")).toMatchObject({ imported: 0, unchanged: 1 })
        expect(yield* importedEvents(instance, "lb-1")).toBe(1)
      }))

    it.effect("a user whose rows span several pages is decided once, over all of them", () =>
      Effect.gen(function*() {
        const { fakes, instance } = yield* Harness
        const dir = mkdtempSync(join(tmpdir(), "legacy-pages-"))
        const newest = fakes.bing.mint()
        // 12,000 callbacks of one user (pages are 5,000 rows), the newest in the middle, and a user after them.
        const rows = Array.from({ length: 12_000 }, (_, i) => ({
          user_id: "lm-1",
          access_token: i === 6_000 ? newest.accessToken : `old-${i}`,
          refresh_token: i === 6_000 ? newest.refreshToken ?? null : `old-rt-${i}`,
          updated_at: i === 6_000 ? "2025-06-01 00:00:00" : "2025-01-01 00:00:00"
        }))
        const other = fakes.bing.mint()
        const file = writeLegacyDatabase(join(dir, "alwrity.db"), [{
          ddl: LEGACY_DDL.bing,
          rows: [...rows, { user_id: "lm-2", access_token: other.accessToken, refresh_token: other.refreshToken ?? null }]
        }])
        const { report } = yield* run(instance, [file])
        expect(report.tallies.get("bing")).toMatchObject({ found: 12_001, imported: 2, superseded: 11_999, failed: 0 })
        expect((yield* stored(instance, "lm-1", "bing"))[0]?.access).toBe(newest.accessToken)
        expect((yield* stored(instance, "lm-2", "bing"))[0]?.access).toBe(other.accessToken)
      }))

    it.effect("a dry run reads and reports, and writes nothing", () =>
      Effect.gen(function*() {
        const { fakes, instance } = yield* Harness
        const dir = mkdtempSync(join(tmpdir(), "legacy-dry-"))
        const tokens = fakes.gsc.mint()
        const file = writeLegacyDatabase(join(dir, "alwrity.db"), [
          { ddl: LEGACY_DDL.gsc, rows: [{ user_id: "ld-1", credentials_json: JSON.stringify({ token: tokens.accessToken, refresh_token: tokens.refreshToken }) }] },
          { ddl: LEGACY_DDL.wix }
        ])
        const { report } = yield* run(instance, [file], { dryRun: true })
        expect(report.failed).toBe(false)
        expect(report.tallies.get("gsc")).toMatchObject({ found: 1, imported: 1 })
        expect(report.summary).toContain("would import")
        expect(yield* stored(instance, "ld-1", "gsc")).toEqual([])
      }))

    it.effect("--platform narrows the backfill to the platforms named", () =>
      Effect.gen(function*() {
        const { fakes, instance } = yield* Harness
        const dir = mkdtempSync(join(tmpdir(), "legacy-one-"))
        const g = fakes.gsc.mint()
        const x = fakes.wix.mint()
        const file = writeLegacyDatabase(join(dir, "alwrity.db"), [
          { ddl: LEGACY_DDL.gsc, rows: [{ user_id: "lp-1", credentials_json: JSON.stringify({ token: g.accessToken, refresh_token: g.refreshToken }) }] },
          { ddl: LEGACY_DDL.wix, rows: [{ user_id: "lp-1", access_token: x.accessToken, refresh_token: x.refreshToken ?? null }] }
        ])
        const { report } = yield* run(instance, [file], { platforms: ["wix"] })
        expect([...report.tallies.keys()]).toEqual(["wix"])
        expect(yield* stored(instance, "lp-1", "gsc")).toEqual([])
        expect(yield* stored(instance, "lp-1", "wix")).toHaveLength(1)
      }))

    it.effect("--verify tells a live token, a refused one and a platform that is down apart", () =>
      Effect.gen(function*() {
        const { fakes, instance } = yield* Harness
        const dir = mkdtempSync(join(tmpdir(), "legacy-verify-"))
        const alive = fakes.gsc.mint()
        const down = fakes.bing.mint()
        const file = writeLegacyDatabase(join(dir, "alwrity.db"), [
          { ddl: LEGACY_DDL.gsc, rows: [{ user_id: "lv-1", credentials_json: JSON.stringify({ token: alive.accessToken, refresh_token: alive.refreshToken }) }] },
          { ddl: LEGACY_DDL.wordpress, rows: [{ user_id: "lv-2", access_token: "a-token-wordpress-never-issued", blog_id: "77" }] },
          { ddl: LEGACY_DDL.bing, rows: [{ user_id: "lv-3", access_token: down.accessToken, refresh_token: down.refreshToken ?? null, expires_at: "2025-01-01 00:00:00" }] }
        ])
        fakes.bing.setBehaviour("token", "unavailable")
        const { report } = yield* Effect.ensuring(run(instance, [file], { verify: true }), Effect.sync(() => fakes.bing.server.reset()))
        expect(report.verified?.get("gsc")).toMatchObject({ alive: 1, needsReauth: 0, unavailable: 0 })
        expect(report.verified?.get("wordpress")).toMatchObject({ alive: 0, needsReauth: 1, unavailable: 0 })
        expect(report.verified?.get("bing")).toMatchObject({ alive: 0, needsReauth: 0, unavailable: 1 })
        expect(report.summary).toContain("Verified")
      }))
  })
})
