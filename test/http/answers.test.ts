import { describe, expect, it } from "@effect/vitest"
import { Option, Redacted, Schema } from "effect"
import type { BreakerHealth as Health } from "../../src/resilience/CircuitBreaker.js"
import type { ConnectionEvent } from "../../src/domain/Connection.js"
import type { FreshToken } from "../../src/integrations/Tokens.js"
import type { PlatformStatus } from "../../src/status/status.js"
import { AccessToken, BreakerHealth, ConnectionStatus, Event } from "../../src/http/answers.js"
import { ConnectionStatusJson } from "../../src/http/schemas.js"

// The bytes the service answered before its answers were encoded by these schemas: field
// order, snake_case names, null (never an absent field), ISO 8601 instants.

const sites = { sites: [{ url: "https://example.com/", verified: true }] }

const status: PlatformStatus = {
  platform: "gsc",
  displayName: "Google Search Console",
  configured: true,
  connected: true,
  status: "connected",
  accounts: [{
    accountId: "sc-domain:example.com",
    connected: true,
    status: "active",
    expiresAt: new Date("2026-12-01T10:00:00.000Z"),
    scope: "webmasters",
    connectedAt: new Date("2026-11-01T09:30:00.000Z"),
    lastRefreshedAt: null,
    lastError: null,
    providerData: sites
  }],
  details: sites,
  error: null,
  degraded: true,
  degradedReason: "circuit_open"
}

const json = <A, I>(schema: Schema.Schema<A, I>, value: A) => JSON.stringify(Schema.encodeSync(schema)(value))

describe("the answers' schemas", () => {
  it("encode a platform's status as the service has always answered it", () => {
    expect(json(ConnectionStatus, status)).toBe(
      "{\"platform\":\"gsc\",\"display_name\":\"Google Search Console\",\"configured\":true,\"connected\":true,\"status\":\"connected\",\"accounts\":[{\"account_id\":\"sc-domain:example.com\",\"connected\":true,\"status\":\"active\",\"expires_at\":\"2026-12-01T10:00:00.000Z\",\"scope\":\"webmasters\",\"connected_at\":\"2026-11-01T09:30:00.000Z\",\"last_refreshed_at\":null,\"last_error\":null,\"provider_data\":{\"sites\":[{\"url\":\"https://example.com/\",\"verified\":true}]}}],\"details\":{\"sites\":[{\"url\":\"https://example.com/\",\"verified\":true}]},\"error\":null,\"degraded\":true,\"degraded_reason\":\"circuit_open\"}"
    )
  })

  it("encode a token with its value, nulls for what is unknown, and the refresh error of an Option", () => {
    const token: FreshToken = {
      accessToken: Redacted.make("at-1"),
      tokenType: "Bearer",
      expiresAt: null,
      scope: null,
      accountId: "",
      refreshError: Option.some("RefreshPending")
    }
    expect(json(AccessToken, token)).toBe(
      "{\"access_token\":\"at-1\",\"token_type\":\"Bearer\",\"expires_at\":null,\"scope\":null,\"account_id\":\"\",\"refresh_error\":\"RefreshPending\"}"
    )
    expect(JSON.parse(json(AccessToken, { ...token, refreshError: Option.none() }))).toMatchObject({ refresh_error: null })
  })

  it("encode a breaker's health and an event, numbers as numbers", () => {
    const health: Health = {
      state: "open",
      consecutiveFailures: 5,
      halfOpenSuccesses: 0,
      openedCount: 2,
      lastFailureAt: new Date("2026-12-01T10:00:00.000Z"),
      lastFailureKind: "ProviderUnavailable",
      lastErrorAt: null,
      lastErrorKind: null,
      retryAfterMs: 1500
    }
    expect(json(BreakerHealth, health)).toBe(
      "{\"state\":\"open\",\"consecutive_failures\":5,\"half_open_successes\":0,\"opened_count\":2,\"last_failure_at\":\"2026-12-01T10:00:00.000Z\",\"last_failure_kind\":\"ProviderUnavailable\",\"last_error_at\":null,\"last_error_kind\":null,\"retry_after_ms\":1500}"
    )
    const event: ConnectionEvent = {
      id: 7,
      connectionId: null,
      userId: "u",
      platform: "wix",
      kind: "disconnected",
      detail: { revoked: false },
      at: new Date("2026-12-01T10:00:00.000Z")
    }
    expect(json(Event, event)).toBe(
      "{\"id\":7,\"connection_id\":null,\"platform\":\"wix\",\"kind\":\"disconnected\",\"detail\":{\"revoked\":false},\"at\":\"2026-12-01T10:00:00.000Z\"}"
    )
  })

  it("give clients the JSON form to decode answers with, and the domain value back from it", () => {
    const wire: unknown = JSON.parse(json(ConnectionStatus, status))
    expect(Schema.decodeUnknownSync(ConnectionStatusJson)(wire)).toEqual(wire)
    expect(Schema.decodeUnknownSync(ConnectionStatus)(wire)).toEqual(status)
  })
})
