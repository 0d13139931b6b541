import { Metric, MetricBoundaries } from "effect"

/** Calls to platforms, by platform, operation and outcome (ok or the error's tag). */
export const providerCalls = Metric.counter("provider_calls_total", {
  description: "Calls to platforms by platform, operation and outcome",
  incremental: true
})

/**
 * Latency of each request sent to a token endpoint (code exchange, refresh), in seconds,
 * whatever it answered: one observation per attempt, backoff sleeps and fast failures left out.
 */
export const tokenEndpointLatency = Metric.histogram(
  "provider_token_endpoint_seconds",
  MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 14 }),
  "Latency of each token endpoint request by platform and operation"
)

/** Refresh outcomes by platform, outcome (success, failure) and reason. */
export const refreshes = Metric.counter("token_refreshes_total", {
  description: "Token refreshes by platform, outcome (success, failure, skipped) and reason",
  incremental: true
})

/** From the authorisation request to the stored connection, in seconds. */
export const connectionEstablishment = Metric.histogram(
  "connection_establishment_seconds",
  MetricBoundaries.exponential({ start: 0.5, factor: 2, count: 12 }),
  "Time from authorize to a stored connection, by platform"
)

/** Status cache lookups by result (hit, miss). */
export const statusCacheRequests = Metric.counter("status_cache_requests_total", {
  description: "Connection status cache lookups by result",
  incremental: true
})

/** HTTP requests served, by method, route template and status. */
export const httpRequests = Metric.counter("http_requests_total", {
  description: "HTTP requests by method, route and status",
  incremental: true
})

export const httpRequestDuration = Metric.histogram(
  "http_request_duration_seconds",
  MetricBoundaries.exponential({ start: 0.0005, factor: 2, count: 16 }),
  "HTTP request latency by method and route"
)

/** Monitor ticks by result (ok, failed). */
export const monitorTicks = Metric.counter("monitor_ticks_total", {
  description: "Token monitor ticks by result",
  incremental: true
})

/** Connections handled by the monitor, by outcome (refreshed, validated, failed, skipped, needs_reauth, warned) and reason. */
export const monitorConnections = Metric.counter("monitor_connections_total", {
  description: "Connections handled by the token monitor by outcome and reason",
  incremental: true
})

export const monitorTickDuration = Metric.histogram(
  "monitor_tick_seconds",
  MetricBoundaries.exponential({ start: 0.01, factor: 2, count: 14 }),
  "Duration of token monitor ticks"
)

/** Connections claimed in the last tick. */
export const monitorDue = Metric.gauge("monitor_due_connections", { description: "Connections due in the last monitor tick" })

/** Circuit breaker transitions by platform, from and to. */
export const breakerTransitions = Metric.counter("circuit_breaker_transitions_total", {
  description: "Circuit breaker transitions by platform",
  incremental: true
})

/** Circuit breaker state by platform: 0 closed, 1 half open, 2 open. */
export const breakerState = Metric.gauge("circuit_breaker_state", { description: "Circuit breaker state (0 closed, 1 half open, 2 open)" })

/** Webhook deliveries finished or put off, by endpoint and outcome (delivered, retrying, failed). */
export const webhookDeliveries = Metric.counter("webhook_deliveries_total", {
  description: "Webhook delivery attempts by endpoint and outcome (delivered, retrying, failed)",
  incremental: true
})

/** Every attempt, by endpoint and result: the HTTP status class (2xx, 4xx, 5xx, ...), timeout or error. */
export const webhookAttempts = Metric.counter("webhook_delivery_attempts_total", {
  description: "Webhook delivery attempts by endpoint and result",
  incremental: true
})

/** From the event stored to the endpoint's 2xx, in seconds, by endpoint. */
export const webhookLatency = Metric.histogram(
  "webhook_delivery_latency_seconds",
  MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 20 }),
  "Time from an event stored to its delivery, by endpoint"
)

/** Age of the oldest delivery not yet made or given up, in seconds (0 when none). */
export const webhookOldestPending = Metric.gauge("webhook_oldest_pending_seconds", {
  description: "Age of the oldest pending webhook delivery"
})
