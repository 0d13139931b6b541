import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { fernetEncrypt, parseFernetKey } from "../../src/crypto/fernet.js"
import { Either } from "effect"
import { randomKey } from "../support/config.js"
import { migratedDatabase, scratchDirectory, serviceEnv, startService, storedConnections, withRepository } from "../support/processes.js"
import { LEGACY_DDL, writeLegacyDatabase } from "./legacy.js"

const key = randomKey("k1")
const FERNET_TEXT = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
const FERNET = Either.getOrThrow(parseFernetKey(FERNET_TEXT))

describe("npm run backfill (the command)", () => {
  it("imports with the keys of the environment, prints the summary, keeps secrets out of its output, and exits non-zero on a failed row", async () => {
    const url = await migratedDatabase()
    const dir = scratchDirectory("oi-backfill-")
    const file = writeLegacyDatabase(join(dir, "alwrity.db"), [
      {
        ddl: LEGACY_DDL.gsc,
        rows: [{ user_id: "cmd-1", credentials_json: JSON.stringify({ token: "ya29.cmd-access", refresh_token: "1//cmd-refresh", client_secret: "cmd-client-secret" }) }]
      },
      {
        ddl: LEGACY_DDL.wix,
        rows: [
          { user_id: "cmd-2", access_token: fernetEncrypt(FERNET, "wix-cmd-access", 1_700_000_000, Buffer.alloc(16, 3)), refresh_token: null, expires_at: "2031-01-01 00:00:00" },
          { user_id: "cmd-3", access_token: "wix-x", expires_at: "someday" }
        ]
      }
    ])
    const env = { ...serviceEnv(key), DATABASE_URL: url, WIX_TOKEN_ENCRYPTION_KEY: FERNET_TEXT }

    // The row that fails fails a dry run too; nothing is written.
    const dry = startService(["backfill", "--dry-run", file], env, dir)
    expect((await dry.exit).code).toBe(1)
    expect(dry.lines.join("\n")).toContain("would import")
    expect(await withRepository(url, key, (repo) => repo.findByUserAndPlatform("cmd-1", "gsc"))).toEqual([])

    const run = startService(["backfill", file], env, dir)
    const { code } = await run.exit
    const output = run.lines.join("\n")
    expect(code).toBe(1)
    expect(output).toContain("| gsc | 1 | 1 | 0 | 0 | 0 | 0 | 0 |")
    expect(output).toContain("| wix | 2 | 1 | 0 | 0 | 0 | 0 | 1 |")
    expect(output).toMatch(/wix_oauth_tokens row \d+: expires_at/)
    expect(output).toMatch(/^backfill: 3 \/ 3 rows/m)
    for (const secret of ["ya29.cmd-access", "1//cmd-refresh", "cmd-client-secret", "wix-cmd-access", FERNET_TEXT]) expect(output).not.toContain(secret)
    const [gsc] = await storedConnections(url, key, "gsc", ["cmd-1"])
    expect(gsc?.refreshToken).toBe("1//cmd-refresh")

    // A malformed Fernet key stops the command, naming where it came from.
    const bad = startService(["backfill", file], { ...env, WIX_TOKEN_ENCRYPTION_KEY: "short" }, dir)
    expect((await bad.exit).code).toBe(1)
    expect(bad.lines.join("\n")).toContain("WIX_TOKEN_ENCRYPTION_KEY")
  })
})
