/** The changes of a connection's state that are pushed to the application's webhook endpoints. */
export const WEBHOOK_EVENT_TYPES = [
  "connection.connected",
  "connection.confirmation_refused",
  "connection.imported",
  "connection.needs_reauth",
  "connection.expiring_soon",
  "connection.revoked",
  "connection.disconnected",
  "connection.refresh_failing",
  "connection.recovered"
] as const

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number]

export const isWebhookEventType = (value: string): value is WebhookEventType => (WEBHOOK_EVENT_TYPES as ReadonlyArray<string>).includes(value)
