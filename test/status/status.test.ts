import { describe, expect, it } from "@effect/vitest"
import type { Connection } from "../../src/domain/Connection.js"
import { isConnected, platformStatus } from "../../src/status/status.js"
import { connectionRow } from "../support/connections.js"
import { at } from "../support/time.js"

const connection = (overrides: Partial<Connection> = {}) => connectionRow({ providerData: { sites: ["a"] }, ...overrides })

const gsc = { key: "gsc", displayName: "Google Search Console", configured: true }

/** The configured keys: connectionRow seals under "k1". */
const knowsKey = (keyId: string) => keyId === "k1"

describe("connected", () => {
  it("is an active connection with an unexpired token", () => {
    expect(isConnected(connection({ hasRefreshToken: false }), at(10))).toBe(true)
  })

  it("is an active connection with an expired token that can be refreshed", () => {
    expect(isConnected(connection({ expiresAt: at(10) }), at(20))).toBe(true)
  })

  it("is not an expired token without a refresh token", () => {
    expect(isConnected(connection({ expiresAt: at(10), hasRefreshToken: false }), at(20))).toBe(false)
    expect(isConnected(connection({ expiresAt: at(10), hasRefreshToken: false }), at(10))).toBe(false)
  })

  it("is a token that does not expire", () => {
    expect(isConnected(connection({ expiresAt: null, hasRefreshToken: false }), at(1e9))).toBe(true)
  })

  it("is never a connection that needs re-authorisation, was revoked or disconnected", () => {
    for (const status of ["needs_reauth", "revoked", "disconnected"] as const) {
      expect(isConnected(connection({ status }), at(10))).toBe(false)
    }
  })
})

describe("platform status", () => {
  it("reports a platform without connections as not connected, or not configured", () => {
    expect(platformStatus(gsc, [], at(0), knowsKey).status).toBe("not_connected")
    expect(platformStatus({ ...gsc, configured: false }, [], at(0), knowsKey).status).toBe("not_configured")
  })

  it("is connected when any account is, with the newest connected account's details", () => {
    const status = platformStatus(gsc, [
      connection({ id: "a", accountId: "1", status: "needs_reauth", providerData: { blog: "old" } }),
      connection({ id: "b", accountId: "2", providerData: { blog: "new" }, updatedAt: at(5) })
    ], at(10), knowsKey)
    expect(status.connected).toBe(true)
    expect(status.status).toBe("connected")
    expect(status.details).toEqual({ blog: "new" })
    expect(status.error).toBeNull()
    expect(status.accounts.map((a) => [a.accountId, a.status])).toEqual([["1", "needs_reauth"], ["2", "active"]])
  })

  it("puts the state the user can act on first", () => {
    const status = platformStatus(gsc, [
      connection({ id: "a", accountId: "1", status: "disconnected" }),
      connection({ id: "b", accountId: "2", status: "needs_reauth" })
    ], at(10), knowsKey)
    expect(status.status).toBe("needs_reauth")
    expect(status.error).toMatch(/connect again/)
  })

  it("calls an unrefreshable token past its expiry expired", () => {
    const status = platformStatus(gsc, [connection({ expiresAt: at(5), hasRefreshToken: false })], at(10), knowsKey)
    expect(status.status).toBe("expired")
    expect(status.accounts[0]?.status).toBe("expired")
  })

  it("marks the answer degraded when the platform cannot be reached", () => {
    const status = platformStatus({ ...gsc, degradedReason: "circuit_open" }, [connection()], at(10), knowsKey)
    expect(status.connected).toBe(true)
    expect(status.degraded).toBe(true)
    expect(status.degradedReason).toBe("circuit_open")
  })
  it("calls a connection sealed under a key that is not configured unreadable, and not connected", () => {
    const status = platformStatus(gsc, [connection({ keyId: "lost" })], at(10), knowsKey)
    expect(status.connected).toBe(false)
    expect(status.status).toBe("unreadable")
    expect(status.error).toBe(
      "The stored tokens cannot be decrypted with the configured TOKEN_ENCRYPTION_KEYS; restore the key or reconnect"
    )
    expect(status.details).toEqual({})
    expect(status.accounts.map((a) => [a.connected, a.status])).toEqual([[false, "unreadable"]])
  })

  it("is connected through a readable account beside an unreadable one", () => {
    const status = platformStatus(gsc, [
      connection({ id: "a", accountId: "1", keyId: "lost", providerData: { blog: "lost" }, updatedAt: at(9) }),
      connection({ id: "b", accountId: "2", providerData: { blog: "kept" }, updatedAt: at(5) })
    ], at(10), knowsKey)
    expect(status.status).toBe("connected")
    expect(status.details).toEqual({ blog: "kept" })
    expect(status.accounts.map((a) => [a.accountId, a.status])).toEqual([["1", "unreadable"], ["2", "active"]])
  })

  it("puts unreadable before needs_reauth: restoring the key may recover it", () => {
    const status = platformStatus(gsc, [
      connection({ id: "a", accountId: "1", status: "needs_reauth" }),
      connection({ id: "b", accountId: "2", keyId: "lost" })
    ], at(10), knowsKey)
    expect(status.status).toBe("unreadable")
  })

  it("keeps an expired, unrefreshable token under an unknown key expired: the key would not revive it", () => {
    const status = platformStatus(gsc, [connection({ keyId: "lost", expiresAt: at(5), hasRefreshToken: false })], at(10), knowsKey)
    expect(status.status).toBe("expired")
    expect(status.accounts[0]?.status).toBe("expired")
  })
})
