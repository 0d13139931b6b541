import type { ConnectionEvent } from "../domain/Connection.js"
import type { PlatformStatus } from "../integrations/status.js"
import type { BreakerHealth } from "../resilience/CircuitBreaker.js"

const iso = (d: Date | null) => (d === null ? null : d.toISOString())

export const breakerHealthJson = (h: BreakerHealth) => ({
  state: h.state,
  consecutive_failures: h.consecutiveFailures,
  half_open_successes: h.halfOpenSuccesses,
  opened_count: h.openedCount,
  last_failure_at: iso(h.lastFailureAt),
  last_failure_kind: h.lastFailureKind,
  last_error_at: iso(h.lastErrorAt),
  last_error_kind: h.lastErrorKind,
  retry_after_ms: h.retryAfterMs
})

export const connectionStatusJson = (s: PlatformStatus) => ({
  platform: s.platform,
  display_name: s.displayName,
  configured: s.configured,
  connected: s.connected,
  status: s.status,
  accounts: s.accounts.map((a) => ({
    account_id: a.accountId,
    connected: a.connected,
    status: a.status,
    expires_at: iso(a.expiresAt),
    scope: a.scope,
    connected_at: a.connectedAt.toISOString(),
    last_refreshed_at: iso(a.lastRefreshedAt),
    last_error: a.lastError,
    provider_data: a.providerData
  })),
  details: s.details,
  error: s.error,
  degraded: s.degraded,
  degraded_reason: s.degradedReason
})

export const eventJson = (e: ConnectionEvent) => ({
  id: e.id,
  connection_id: e.connectionId,
  platform: e.platform,
  kind: e.kind,
  detail: e.detail,
  at: e.at.toISOString()
})
