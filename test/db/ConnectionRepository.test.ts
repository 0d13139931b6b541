import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { makeCipher, TokenCipher } from "../../src/crypto/TokenCipher.js"
import { ConnectionRepository, type NewConnection } from "../../src/db/ConnectionRepository.js"
import { randomKey } from "../support/config.js"
import { failureTagged } from "../support/effects.js"
import { TestDatabaseLive } from "../support/database.js"
import { at } from "../support/time.js"

const keyA = randomKey("key-a")
const keyB = randomKey("key-b")

const repositoryWith = (keys: Parameters<typeof makeCipher>[0]) =>
  ConnectionRepository.DefaultWithoutDependencies.pipe(
    Layer.provide(Layer.succeed(TokenCipher, TokenCipher.make(makeCipher(keys))))
  )

let n = 0
const newConnection = (overrides: Partial<NewConnection> = {}): NewConnection => ({
  userId: `user-${++n}`,
  platform: "gsc",
  accountId: "",
  providerData: { sites: ["sc-domain:example.com"] },
  tokens: {
    accessToken: Redacted.make(`access-${n}-plaintext`),
    refreshToken: Option.some(Redacted.make(`refresh-${n}-plaintext`)),
    tokenType: "Bearer",
    scope: "https://www.googleapis.com/auth/webmasters.readonly",
    expiresAt: at(3600)
  },
  ...overrides
})

const plain = (token: Redacted.Redacted<string>) => Redacted.value(token)

describe("ConnectionRepository", () => {
  layer(TestDatabaseLive, { excludeTestServices: true })((it) => {
    it.effect("stores tokens only as ciphertext: the raw columns contain neither token", () =>
      Effect.gen(function*() {
        const repo = yield* ConnectionRepository
        const sql = yield* SqlClient.SqlClient
        const input = newConnection()
        const stored = yield* repo.upsert(input, at(0))
        const rows = yield* sql<{ accessToken: Uint8Array; refreshToken: Uint8Array; keyId: string }>`
          select access_token, refresh_token, key_id from oauth_connections where id = ${stored.id}`
        const raw = Buffer.concat([Buffer.from(rows[0]!.accessToken), Buffer.from(rows[0]!.refreshToken)])
        for (const secret of [plain(input.tokens.accessToken), Option.getOrThrow(input.tokens.refreshToken).pipe(plain)]) {
          expect(raw.includes(Buffer.from(secret))).toBe(false)
          expect(raw.toString("base64")).not.toContain(Buffer.from(secret).toString("base64"))
        }
        expect(rows[0]!.keyId).toBe("key-a")
        const tokens = yield* repo.tokens(stored)
        expect(plain(tokens.accessToken)).toBe(plain(input.tokens.accessToken))
      }).pipe(Effect.provide(repositoryWith([keyA]))))

    it.effect("a reconnect updates the one row of (user, platform, account) and keeps the refresh token when none is issued", () =>
      Effect.gen(function*() {
        const repo = yield* ConnectionRepository
        const first = newConnection()
        const a = yield* repo.upsert(first, at(0))
        yield* repo.setStatus(a.id, "needs_reauth", at(10), "invalid_grant")
        const again = {
          ...first,
          tokens: { ...first.tokens, accessToken: Redacted.make("access-second"), refreshToken: Option.none() }
        }
        const b = yield* repo.upsert(again, at(20))
        expect(b.id).toBe(a.id)
        expect(b.status).toBe("active")
        expect(b.lastRefreshError).toBeNull()
        expect(yield* repo.findByUser(first.userId)).toHaveLength(1)
        const tokens = yield* repo.tokens(b)
        expect(plain(tokens.accessToken)).toBe("access-second")
        expect(Option.map(tokens.refreshToken, plain)).toEqual(Option.map(first.tokens.refreshToken, plain))
        const otherAccount = yield* repo.upsert({ ...first, accountId: "site-2" }, at(30))
        expect(otherAccount.id).not.toBe(a.id)
        expect(yield* repo.findByUserAndPlatform(first.userId, "gsc")).toHaveLength(2)
      }).pipe(Effect.provide(repositoryWith([keyA]))))

    it.effect("a refresh that rotates the refresh token stores the new one with the new access token", () =>
      Effect.gen(function*() {
        const repo = yield* ConnectionRepository
        const stored = yield* repo.upsert(newConnection(), at(0))
        const refreshed = yield* repo.storeRefresh(stored, {
          accessToken: Redacted.make("access-rotated"),
          refreshToken: Option.some(Redacted.make("refresh-rotated")),
          tokenType: "Bearer",
          scope: null,
          expiresAt: at(7200)
        }, at(3000))
        expect(refreshed.expiresAt).toEqual(at(7200))
        expect(refreshed.lastRefreshedAt).toEqual(at(3000))
        expect(refreshed.scope).toBe(stored.scope)
        const tokens = yield* repo.tokens(refreshed)
        expect(plain(tokens.accessToken)).toBe("access-rotated")
        expect(Option.map(tokens.refreshToken, plain)).toEqual(Option.some("refresh-rotated"))
      }).pipe(Effect.provide(repositoryWith([keyA]))))

    it.effect("a refresh without a new refresh token keeps the old one", () =>
      Effect.gen(function*() {
        const repo = yield* ConnectionRepository
        const input = newConnection()
        const stored = yield* repo.upsert(input, at(0))
        const refreshed = yield* repo.storeRefresh(stored, {
          accessToken: Redacted.make("access-2"),
          refreshToken: Option.none(),
          tokenType: null,
          scope: null,
          expiresAt: at(7200)
        }, at(3000))
        const tokens = yield* repo.tokens(refreshed)
        expect(plain(tokens.accessToken)).toBe("access-2")
        expect(Option.map(tokens.refreshToken, plain)).toEqual(Option.map(input.tokens.refreshToken, plain))
      }).pipe(Effect.provide(repositoryWith([keyA]))))

    it.effect("after key rotation, rows written under the old key are read, and a refresh re-seals the kept refresh token under the new key", () =>
      Effect.gen(function*() {
        const input = newConnection()
        const stored = yield* Effect.flatMap(ConnectionRepository, (repo) => repo.upsert(input, at(0))).pipe(
          Effect.provide(repositoryWith([keyA]))
        )
        yield* Effect.gen(function*() {
          const repo = yield* ConnectionRepository
          const tokens = yield* repo.tokens(stored)
          expect(plain(tokens.accessToken)).toBe(plain(input.tokens.accessToken))
          const refreshed = yield* repo.storeRefresh(stored, {
            accessToken: Redacted.make("access-under-b"),
            refreshToken: Option.none(),
            tokenType: null,
            scope: null,
            expiresAt: at(7200)
          }, at(100))
          expect(refreshed.keyId).toBe("key-b")
        }).pipe(Effect.provide(repositoryWith([keyB, keyA])))
        const onlyB = yield* Effect.flatMap(ConnectionRepository, (repo) =>
          Effect.flatMap(repo.findById(stored.id), (row) => repo.tokens(Option.getOrThrow(row)))).pipe(
            Effect.provide(repositoryWith([keyB]))
          )
        expect(plain(onlyB.accessToken)).toBe("access-under-b")
        expect(Option.map(onlyB.refreshToken, plain)).toEqual(Option.map(input.tokens.refreshToken, plain))
      }))

    it.effect("reports a tampered row or an unknown key as an unreadable connection, not a crash", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const repo = yield* ConnectionRepository
        const stored = yield* repo.upsert(newConnection(), at(0))
        yield* sql`update oauth_connections set access_token = set_byte(access_token, 20, get_byte(access_token, 20) # 1)
          where id = ${stored.id}`
        const tampered = yield* failureTagged(repo.tokens(stored), "ConnectionUnreadable")
        expect(tampered._tag).toBe("ConnectionUnreadable")
        expect(tampered.reason).toMatch(/authentication-failed/)

        const other = yield* repo.upsert(newConnection(), at(0))
        yield* sql`update oauth_connections set key_id = 'retired' where id = ${other.id}`
        const unknown = yield* failureTagged(repo.tokens(other), "ConnectionUnreadable")
        expect(unknown.reason).toMatch(/unknown-key/)
        expect(unknown.reason).not.toMatch(/plaintext/)
      }).pipe(Effect.provide(repositoryWith([keyA]))))

    it.effect("disconnect forgets the tokens and keeps the row", () =>
      Effect.gen(function*() {
        const repo = yield* ConnectionRepository
        const input = newConnection()
        const stored = yield* repo.upsert(input, at(0))
        const gone = yield* repo.disconnect(input.userId, "gsc", at(50))
        expect(gone.map((c) => c.status)).toEqual(["disconnected"])
        expect(gone[0]?.hasRefreshToken).toBe(false)
        const error = yield* Effect.flip(repo.tokens(stored))
        expect(error._tag).toBe("ConnectionUnreadable")
        expect(yield* repo.disconnect(input.userId, "gsc", at(60))).toEqual([])
      }).pipe(Effect.provide(repositoryWith([keyA]))))

    it.effect("reads by user and by user and platform, and gives none for strangers", () =>
      Effect.gen(function*() {
        const repo = yield* ConnectionRepository
        const input = newConnection()
        yield* repo.upsert(input, at(0))
        yield* repo.upsert({ ...input, platform: "bing" }, at(0))
        expect((yield* repo.findByUser(input.userId)).map((c) => c.platform)).toEqual(["bing", "gsc"])
        expect((yield* repo.findByUserAndPlatform(input.userId, "bing")).map((c) => c.platform)).toEqual(["bing"])
        expect(yield* repo.findByUser("nobody")).toEqual([])
        expect(Option.isNone(yield* repo.findById("00000000-0000-0000-0000-000000000000"))).toBe(true)
      }).pipe(Effect.provide(repositoryWith([keyA]))))
  })
})
