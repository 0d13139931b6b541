import { createHash } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { stateContext, TokenCipher } from "../../src/crypto/TokenCipher.js"
import { ConnectionRepository } from "../../src/db/ConnectionRepository.js"
import { KeyRotation } from "../../src/db/KeyRotation.js"
import { PendingGrantRepository } from "../../src/db/PendingGrantRepository.js"
import { StateRepository } from "../../src/db/StateRepository.js"
import type { Settings } from "../../src/config/Settings.js"
import { randomKey, testConfig } from "../support/config.js"
import { TestDatabaseLive } from "../support/database.js"

const k1 = randomKey("k1")
const k2 = randomKey("k2")

/** The repositories and the rotation under a keyring, on the database in context. */
const withKeys = (keys: Settings["encryptionKeys"]) => <A, E>(effect: Effect.Effect<A, E, any>) =>
  effect.pipe(
    Effect.provide(Layer.mergeAll(
      ConnectionRepository.DefaultWithoutDependencies,
      PendingGrantRepository.DefaultWithoutDependencies,
      StateRepository.Default,
      KeyRotation.DefaultWithoutDependencies
    ).pipe(Layer.provideMerge(TokenCipher.Default), Layer.provide(testConfig({ encryptionKeys: keys }))))
  ) as Effect.Effect<A, E, SqlClient.SqlClient>

const tokens = (i: number) => ({
  accessToken: Redacted.make(`access-${i}`),
  refreshToken: i % 3 === 0 ? Option.none() : Option.some(Redacted.make(`refresh-${i}`)),
  tokenType: "Bearer",
  scope: null,
  expiresAt: new Date(Date.now() + 3_600_000)
})

/**
 * Stores, under the keyring in context, a connection per user (`<prefix>-<i>`), a pending grant
 * (its confirmation code `<prefix>-code`) and an authorization request with a verifier (its
 * state `<prefix>-state`).
 */
const seedSealed = (prefix: string, users: ReadonlyArray<number>, now: Date) =>
  Effect.gen(function*() {
    const connections = yield* ConnectionRepository
    const pending = yield* PendingGrantRepository
    const states = yield* StateRepository
    const cipher = yield* TokenCipher
    for (const i of users) {
      yield* connections.upsert({ userId: `${prefix}-${i}`, platform: "gsc", accountId: "", tokens: tokens(i), providerData: {} }, now)
    }
    yield* pending.create({
      confirmationHash: createHash("sha256").update(`${prefix}-code`).digest(),
      userId: `${prefix}-pending`,
      platform: "gsc",
      accountId: "acc",
      tokens: tokens(1),
      providerData: {},
      flowStartedAt: now,
      confirmBy: new Date(now.getTime() + 600_000)
    }, now)
    const hash = createHash("sha256").update(`${prefix}-state`).digest()
    const verifier = yield* cipher.seal(Redacted.make(`${prefix}-verifier`), stateContext(hash, `${prefix}-state`, "gsc"))
    yield* states.create({
      stateHash: hash,
      userId: `${prefix}-state`,
      platform: "gsc",
      codeVerifier: verifier,
      redirectUri: "https://app.example.com/oauth/gsc/callback",
      returnTo: null,
      mode: "redirect",
      expiresAt: new Date(now.getTime() + 600_000)
    }, now, 10)
  })

describe("rotate-keys on PostgreSQL", () => {
  it.effect("re-seals every secret under the current key in batches; then the old key can go, and every secret opens", () =>
    Effect.gen(function*() {
      const now = new Date()
      const users = Array.from({ length: 23 }, (_, i) => i)
      // Sealed under k1.
      yield* withKeys([k1])(seedSealed("kr", users, now))

      // k2 first: it seals; k1 still opens. Batches of 5, so every table takes several.
      const { after, before, progress, totals } = yield* withKeys([k2, k1])(Effect.gen(function*() {
        const rotation = yield* KeyRotation
        const before = yield* rotation.usage
        const progress: Array<string> = []
        const totals = yield* rotation.rotate((table, batch) => Effect.sync(() => void progress.push(`${table}:${batch.resealed}`)), 5)
        const after = yield* rotation.usage
        return { after, before, progress, totals }
      }))
      expect(before.filter((u) => u.keyId === "k1").map((u) => [u.table, u.rows])).toEqual([["authorization_requests", 1], ["connections", 23], ["pending_grants", 1]])
      expect(totals).toEqual({ resealed: 25, changed: 0, unreadable: 0 })
      expect(progress.filter((p) => p.startsWith("connections:")).length).toBeGreaterThanOrEqual(5)
      expect(after.every((u) => u.keyId === "k2")).toBe(true)
      // A second run finds nothing to do.
      const again = yield* withKeys([k2, k1])(Effect.flatMap(KeyRotation, (r) => r.rotate(() => Effect.void, 5)))
      expect(again).toEqual({ resealed: 0, changed: 0, unreadable: 0 })

      // k2 alone: every secret opens.
      yield* withKeys([k2])(Effect.gen(function*() {
        const connections = yield* ConnectionRepository
        for (const i of users) {
          const [row] = yield* connections.findByUserAndPlatform(`kr-${i}`, "gsc")
          const opened = yield* connections.tokens(row!)
          expect(Redacted.value(opened.accessToken)).toBe(`access-${i}`)
          expect(Option.map(opened.refreshToken, Redacted.value)).toEqual(i % 3 === 0 ? Option.none() : Option.some(`refresh-${i}`))
        }
        const pending = yield* PendingGrantRepository
        const sql = yield* SqlClient.SqlClient
        const locked = yield* sql.withTransaction(pending.lock(createHash("sha256").update("kr-code").digest(), "gsc"))
        expect(Option.isSome(locked)).toBe(true)
        const states = yield* StateRepository
        const cipher = yield* TokenCipher
        const hash = createHash("sha256").update("kr-state").digest()
        const [state] = yield* sql<{ keyId: string; codeVerifier: Uint8Array }>`select key_id, code_verifier from oauth_states where state_hash = ${hash}`
        const verifier = yield* cipher.open({ keyId: state!.keyId, bytes: state!.codeVerifier }, stateContext(hash, "kr-state", "gsc"))
        expect(Redacted.value(verifier)).toBe("kr-verifier")
        expect(states).toBeDefined()
      }))
    }).pipe(Effect.provide(TestDatabaseLive)), { timeout: 60_000 })

  it.effect("rows no configured key opens are counted as unreadable, in every table, and left as they are", () =>
    Effect.gen(function*() {
      const k3 = randomKey("k3")
      const now = new Date()
      yield* withKeys([k3])(seedSealed("lost", [1, 3], now))
      // k3 is gone: nothing opens these rows, so nothing is written to them.
      const { after, totals } = yield* withKeys([k2, k1])(Effect.gen(function*() {
        const rotation = yield* KeyRotation
        const totals = yield* rotation.rotate(() => Effect.void, 5)
        return { after: yield* rotation.usage, totals }
      }))
      expect(totals).toEqual({ resealed: 0, changed: 0, unreadable: 4 })
      expect(after.map((u) => [u.keyId, u.table, u.rows])).toEqual([["k3", "authorization_requests", 1], ["k3", "connections", 2], ["k3", "pending_grants", 1]])
    }).pipe(Effect.provide(TestDatabaseLive)), { timeout: 60_000 })
})
