import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { makeCipher, TokenCipher } from "../../src/crypto/TokenCipher.js"
import { ConnectionRepository } from "../../src/db/ConnectionRepository.js"
import type { NewConnection } from "../../src/db/connectionWrites.js"
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

const OWNER = "test-owner"

/** A row as stored, with its lease taken by OWNER: outcomes are written only by the lease holder. */
const storedAndLeased = (input: NewConnection = newConnection()) =>
  Effect.gen(function*() {
    const repo = yield* ConnectionRepository
    const stored = yield* repo.upsert(input, at(0))
    return Option.getOrThrow(yield* repo.acquireLease(stored.id, OWNER, at(0), at(120)))
  })

const refreshedTokens = (access: string, rotated: string | null, previous: Option.Option<Redacted.Redacted<string>>) => ({
  accessToken: Redacted.make(access),
  refreshToken: rotated === null ? Option.none() : Option.some(Redacted.make(rotated)),
  previousRefreshToken: previous,
  tokenType: null,
  scope: null,
  expiresAt: at(7200)
})

const eventsOf = (connectionId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ kind: string; detail: Record<string, unknown> }>`select kind, detail from oauth_events where connection_id = ${connectionId} order by id`)

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
        yield* repo.acquireLease(a.id, OWNER, at(5), at(120))
        yield* repo.markDead(a.id, "needs_reauth", "invalid_grant", { owner: OWNER, events: [], now: at(10) })
        const again = {
          ...first,
          tokens: { ...first.tokens, accessToken: Redacted.make("access-second"), refreshToken: Option.none() }
        }
        const b = yield* repo.upsert(again, at(20))
        expect(b.id).toBe(a.id)
        expect(b.status).toBe("active")
        expect(b.lastRefreshError).toBeNull()
        expect(yield* repo.findByUsers([first.userId])).toHaveLength(1)
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
        const stored = yield* storedAndLeased()
        const refreshed = Option.getOrThrow(
          yield* repo.storeRefresh(stored, { ...refreshedTokens("access-rotated", "refresh-rotated", Option.none()), tokenType: "Bearer" }, {
            owner: OWNER,
            events: [],
            now: at(3000)
          })
        )
        expect(refreshed.expiresAt).toEqual(at(7200))
        expect(refreshed.lastRefreshedAt).toEqual(at(3000))
        expect(refreshed.scope).toBe(stored.scope)
        expect(refreshed.leaseUntil).toBeNull()
        const tokens = yield* repo.tokens(refreshed)
        expect(plain(tokens.accessToken)).toBe("access-rotated")
        expect(Option.map(tokens.refreshToken, plain)).toEqual(Option.some("refresh-rotated"))
      }).pipe(Effect.provide(repositoryWith([keyA]))))

    it.effect("the row a stored refresh gives is the row as it reads back", () =>
      Effect.gen(function*() {
        const repo = yield* ConnectionRepository
        const stored = yield* storedAndLeased()
        for (const [access, refresh] of [["access-r1", "refresh-r1"], ["access-r2", null]] as const) {
          const leased = Option.getOrThrow(yield* repo.acquireLease(stored.id, OWNER, at(4000), at(4100)))
          const given = Option.getOrThrow(
            yield* repo.storeRefresh(leased, { ...refreshedTokens(access, refresh, Option.none()), tokenType: null, scope: "narrower" }, {
              owner: OWNER,
              events: [],
              now: at(5000)
            })
          )
          expect(given).toEqual(Option.getOrThrow(yield* repo.findById(stored.id)))
        }
      }).pipe(Effect.provide(repositoryWith([keyA]))))

    it.effect("a refresh without a new refresh token keeps the old one", () =>
      Effect.gen(function*() {
        const repo = yield* ConnectionRepository
        const input = newConnection()
        const stored = yield* storedAndLeased(input)
        const refreshed = Option.getOrThrow(
          yield* repo.storeRefresh(stored, refreshedTokens("access-2", null, input.tokens.refreshToken), { owner: OWNER, events: [], now: at(3000) })
        )
        const tokens = yield* repo.tokens(refreshed)
        expect(plain(tokens.accessToken)).toBe("access-2")
        expect(Option.map(tokens.refreshToken, plain)).toEqual(Option.map(input.tokens.refreshToken, plain))
      }).pipe(Effect.provide(repositoryWith([keyA]))))

    it.effect("after key rotation, rows written under the old key are read, and a refresh re-seals the kept refresh token under the new key", () =>
      Effect.gen(function*() {
        const input = newConnection()
        const stored = yield* storedAndLeased(input).pipe(Effect.provide(repositoryWith([keyA])))
        yield* Effect.gen(function*() {
          const repo = yield* ConnectionRepository
          const tokens = yield* repo.tokens(stored)
          expect(plain(tokens.accessToken)).toBe(plain(input.tokens.accessToken))
          const refreshed = yield* repo.storeRefresh(stored, refreshedTokens("access-under-b", null, tokens.refreshToken), {
            owner: OWNER,
            events: [],
            now: at(100)
          })
          expect(Option.map(refreshed, (r) => r.keyId)).toEqual(Option.some("key-b"))
        }).pipe(Effect.provide(repositoryWith([keyB, keyA])))
        const onlyB = yield* Effect.flatMap(ConnectionRepository, (repo) =>
          Effect.flatMap(repo.findById(stored.id), (row) => repo.tokens(Option.getOrThrow(row)))).pipe(
            Effect.provide(repositoryWith([keyB]))
          )
        expect(plain(onlyB.accessToken)).toBe("access-under-b")
        expect(Option.map(onlyB.refreshToken, plain)).toEqual(Option.map(input.tokens.refreshToken, plain))
      }))

    it.effect("a refresh that ends after a disconnect does not bring the connection back", () =>
      Effect.gen(function*() {
        const repo = yield* ConnectionRepository
        const input = newConnection()
        const stored = yield* storedAndLeased(input)
        yield* repo.disconnect(input.userId, "gsc", at(10))
        const late = yield* repo.storeRefresh(stored, refreshedTokens("access-late", "refresh-late", Option.none()), {
          owner: OWNER,
          events: [{ kind: "refreshed", detail: {} }],
          now: at(20)
        })
        expect(Option.isNone(late)).toBe(true)
        const row = Option.getOrThrow(yield* repo.findById(stored.id))
        expect(row).toMatchObject({ status: "disconnected", hasRefreshToken: false, lastRefreshedAt: null })
        expect(yield* eventsOf(stored.id)).toEqual([])
      }).pipe(Effect.provide(repositoryWith([keyA]))))

    it.effect("an outcome is written only by the holder of the lease, and never over a revoked connection", () =>
      Effect.gen(function*() {
        const repo = yield* ConnectionRepository
        const stored = yield* storedAndLeased()
        const failure = { error: "ProviderUnavailable", invalidGrant: false, nextAttemptAt: at(200), announceFailing: false }
        const byStranger = yield* repo.recordRefreshFailure(stored.id, failure, { owner: "someone-else", events: [], now: at(10) })
        expect(Option.isNone(byStranger)).toBe(true)
        yield* repo.markDead(stored.id, "revoked", "token_rejected", { owner: OWNER, events: [], now: at(20) })
        yield* repo.acquireLease(stored.id, OWNER, at(30), at(150))
        const afterRevoked = yield* repo.storeRefresh(stored, refreshedTokens("access-late", null, Option.none()), { owner: OWNER, events: [], now: at(40) })
        expect(Option.isNone(afterRevoked)).toBe(true)
        expect(Option.map(yield* repo.findById(stored.id), (r) => [r.status, r.refreshFailures])).toEqual(Option.some(["revoked", 0]))
      }).pipe(Effect.provide(repositoryWith([keyA]))))

    it.effect("each outcome is written with its events in one statement: an event that cannot be written undoes the change", () =>
      Effect.gen(function*() {
        const repo = yield* ConnectionRepository
        const sql = yield* SqlClient.SqlClient
        const stored = yield* storedAndLeased()
        const failure = { error: "ProviderUnavailable", invalidGrant: false, nextAttemptAt: at(200), announceFailing: false }
        const events = [{ kind: "refresh_failed" as const, detail: { reason: "ProviderUnavailable" } }]
        const written = yield* repo.recordRefreshFailure(stored.id, failure, { owner: OWNER, events, now: at(10) })
        expect(Option.map(written, (r) => [r.refreshFailures, r.leaseUntil])).toEqual(Option.some([1, null]))
        expect(yield* eventsOf(stored.id)).toEqual([{ kind: "refresh_failed", detail: { reason: "ProviderUnavailable" } }])

        yield* repo.acquireLease(stored.id, OWNER, at(20), at(150))
        yield* sql.unsafe(`create function refuse_events() returns trigger language plpgsql as $$ begin raise exception 'no events'; end $$;
          create trigger refuse_events before insert on oauth_events for each row execute function refuse_events()`)
        const refused = yield* Effect.either(repo.recordRefreshFailure(stored.id, failure, { owner: OWNER, events, now: at(30) }))
        yield* sql.unsafe(`drop trigger refuse_events on oauth_events; drop function refuse_events()`)
        expect(refused._tag).toBe("Left")
        expect(Option.map(yield* repo.findById(stored.id), (r) => r.refreshFailures)).toEqual(Option.some(1))
        expect(yield* eventsOf(stored.id)).toHaveLength(1)
      }).pipe(Effect.provide(repositoryWith([keyA]))))

    it.effect("expiry warnings mark the connection and write its expiring_soon event in one statement, once", () =>
      Effect.gen(function*() {
        const repo = yield* ConnectionRepository
        const input = newConnection({ platform: "wix" })
        const stored = yield* repo.upsert({ ...input, tokens: { ...input.tokens, refreshToken: Option.none(), expiresAt: at(86_400) } }, at(0))
        const warned = yield* repo.claimExpiryWarnings(at(10), at(7 * 86_400), 1000)
        expect(warned.map((r) => r.id)).toContain(stored.id)
        expect(yield* repo.claimExpiryWarnings(at(20), at(7 * 86_400), 1000)).toEqual([])
        expect(yield* eventsOf(stored.id)).toEqual([
          { kind: "expiring_soon", detail: { reason: "no_refresh_token", expires_at: at(86_400).toISOString() } }
        ])
      }).pipe(Effect.provide(repositoryWith([keyA]))))

    it.effect("a pass does not claim again a row it held, even once that lease ran out; its leases are released in one statement", () =>
      Effect.gen(function*() {
        const repo = yield* ConnectionRepository
        const input = newConnection({ platform: "bing" })
        const stored = yield* repo.upsert({ ...input, tokens: { ...input.tokens, expiresAt: at(-1_000_000) } }, at(0))
        const claim = (owner: string, now: number) => repo.claimDueRefreshes(owner, at(now), at(now + 600), at(now + 1), 1000)
        const mine = (rows: ReadonlyArray<{ readonly connection: { readonly id: string } }>) => rows.some((r) => r.connection.id === stored.id)
        expect(mine(yield* claim("pass-1", 0))).toBe(true)
        expect(mine(yield* claim("pass-1", 5))).toBe(false)
        expect(mine(yield* claim("pass-2", 5))).toBe(true)
        yield* repo.releaseLeases([stored.id], "pass-1")
        expect(Option.map(yield* repo.findById(stored.id), (r) => r.leaseUntil)).toEqual(Option.some(at(6)))
        yield* repo.releaseLeases([stored.id], "pass-2")
        expect(Option.map(yield* repo.findById(stored.id), (r) => r.leaseUntil)).toEqual(Option.some(null))
      }).pipe(Effect.provide(repositoryWith([keyA]))))

    it.effect("claims no refresh and no validation of a row sealed under a key that is not configured", () =>
      Effect.gen(function*() {
        const input = newConnection()
        const [due, everlasting] = yield* Effect.flatMap(ConnectionRepository, (repo) =>
          Effect.all([
            repo.upsert({ ...input, tokens: { ...input.tokens, expiresAt: at(-1_000_000) } }, at(0)),
            repo.upsert({ ...newConnection({ platform: "wordpress" }), tokens: { ...input.tokens, refreshToken: Option.none(), expiresAt: null } }, at(0))
          ])).pipe(Effect.provide(repositoryWith([keyB])))
        const ids = [due.id, everlasting.id]
        const claims = (owner: string) =>
          Effect.flatMap(ConnectionRepository, (repo) =>
            Effect.gen(function*() {
              const refreshes = yield* repo.claimDueRefreshes(owner, at(0), at(600), at(1), 1000)
              const validations = yield* repo.claimDueValidations(owner, at(0), at(0), at(1), 1000)
              const claimed = [...refreshes, ...validations].map((c) => c.connection.id)
              yield* repo.releaseLeases(claimed, owner)
              return claimed.filter((id) => ids.includes(id))
            }))
        expect(yield* claims("lacking-b").pipe(Effect.provide(repositoryWith([keyA])))).toEqual([])
        expect(yield* claims("knowing-b").pipe(Effect.provide(repositoryWith([keyA, keyB])))).toEqual(ids)
      }))

    it.effect("never marks dead a row sealed under a key that is not configured; under a configured one it does", () =>
      Effect.gen(function*() {
        const stored = yield* storedAndLeased().pipe(Effect.provide(repositoryWith([keyB])))
        const markDead = Effect.flatMap(ConnectionRepository, (repo) =>
          repo.markDead(stored.id, "needs_reauth", "unreadable", { owner: OWNER, events: [{ kind: "needs_reauth", detail: { reason: "unreadable" } }], now: at(10) }))
        expect(Option.isNone(yield* markDead.pipe(Effect.provide(repositoryWith([keyA]))))).toBe(true)
        const kept = yield* Effect.flatMap(ConnectionRepository, (repo) => repo.findById(stored.id)).pipe(Effect.provide(repositoryWith([keyA])))
        expect(Option.map(kept, (r) => r.status)).toEqual(Option.some("active"))
        expect(yield* eventsOf(stored.id)).toEqual([])
        const ended = yield* markDead.pipe(Effect.provide(repositoryWith([keyA, keyB])))
        expect(Option.map(ended, (r) => r.status)).toEqual(Option.some("needs_reauth"))
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
        expect((yield* repo.findByUsers([input.userId])).map((c) => c.platform)).toEqual(["bing", "gsc"])
        expect((yield* repo.findByUserAndPlatform(input.userId, "bing")).map((c) => c.platform)).toEqual(["bing"])
        expect(yield* repo.findByUsers(["nobody"])).toEqual([])
        expect(Option.isNone(yield* repo.findById("00000000-0000-0000-0000-000000000000"))).toBe(true)
      }).pipe(Effect.provide(repositoryWith([keyA]))))
  })
})
