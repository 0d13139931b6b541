import { JSONSchema, Schema } from "effect"
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from "../domain/webhookEvents.js"

/** The body of every webhook (migrations/0006_webhooks.sql builds it): never a token, code, secret or state. */
export const webhookPayload = (type: WebhookEventType) =>
  Schema.Struct({
    type: Schema.Literal(type),
    id: Schema.String.annotations({ description: "The webhook-id header's value: the same on every attempt; deduplicate on it" }),
    timestamp: Schema.String.annotations({ description: "When the event was stored (ISO 8601, UTC)" }),
    data: Schema.Struct({
      user_id: Schema.String,
      platform: Schema.String,
      account_id: Schema.String.annotations({ description: "The account on the platform; empty when the platform has none" }),
      status: Schema.Literal("connected", "unverified", "needs_reauth", "revoked", "disconnected", "not_connected").annotations({
        description: "The connection's status when the event was stored"
      }),
      reason: Schema.NullOr(Schema.String),
      details: Schema.Record({ key: Schema.String, value: Schema.Unknown })
    })
  })

const descriptions: Record<WebhookEventType, string> = {
  "connection.connected": "A user connected (or reconnected) an account",
  "connection.confirmation_refused": "A grant was confirmed for another user than the one who started the flow; it was revoked",
  "connection.imported": "A connection was brought in by the import API or the backfill",
  "connection.needs_reauth": "The platform refused the stored authorisation: ask the user to connect again",
  "connection.expiring_soon": "A token that cannot be refreshed expires within EXPIRATION_WARNING_DAYS",
  "connection.revoked": "The grant was revoked",
  "connection.disconnected": "The connection was disconnected through the API",
  "connection.refresh_failing": "Refreshes have failed transiently for WEBHOOK_FAILING_AFTER; they go on",
  "connection.recovered": "A connection that was announced failing refreshes again"
}

const jsonSchema = (type: WebhookEventType) => {
  const { $schema: _, ...schema } = JSONSchema.make(webhookPayload(type))
  return schema
}

/**
 * The OpenAPI 3.1 `webhooks` of the document: one POST per event type, its body, the
 * signature headers, and what an answer means.
 */
export const addWebhooksToSpec = (spec: Record<string, any>): Record<string, any> => ({
  ...spec,
  webhooks: Object.fromEntries(WEBHOOK_EVENT_TYPES.map((type) => [type, {
    post: {
      summary: descriptions[type],
      parameters: ["webhook-id", "webhook-timestamp", "webhook-signature"].map((name) => ({
        name,
        in: "header",
        required: true,
        schema: { type: "string" },
        description: "Standard Webhooks signature header (https://www.standardwebhooks.com)"
      })),
      requestBody: { required: true, content: { "application/json": { schema: jsonSchema(type) } } },
      responses: { "200": { description: "Any 2xx: delivered. Anything else, or no answer within WEBHOOK_TIMEOUT: attempted again" } }
    }
  }]))
})
