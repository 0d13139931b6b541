import { createHmac } from "node:crypto"
import { Redacted } from "effect"

/**
 * Webhook signatures as the Standard Webhooks specification defines them
 * (https://www.standardwebhooks.com): `webhook-id`, `webhook-timestamp` (seconds) and
 * `webhook-signature`, a space-separated list of `v1,<base64 HMAC-SHA256 of id.timestamp.body>`,
 * one per secret, so that a receiver holding any current secret verifies the delivery and a
 * secret can be rotated without a gap.
 */

export interface SignedHeaders {
  readonly "webhook-id": string
  readonly "webhook-timestamp": string
  readonly "webhook-signature": string
}

/** The headers of one delivery attempt of `body`: the same id on every attempt, signed by every secret. */
export const signDelivery = (
  secrets: ReadonlyArray<Redacted.Redacted<Uint8Array>>,
  id: string,
  at: Date,
  body: string
): SignedHeaders => {
  const timestamp = String(Math.floor(at.getTime() / 1000))
  const content = `${id}.${timestamp}.${body}`
  const signatures = secrets.map((secret) => `v1,${createHmac("sha256", Redacted.value(secret)).update(content).digest("base64")}`)
  return { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signatures.join(" ") }
}
