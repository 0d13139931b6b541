import { createHmac } from "node:crypto"
import { Either, Redacted } from "effect"

/**
 * Webhook signatures as the Standard Webhooks specification defines them
 * (https://www.standardwebhooks.com): `webhook-id`, `webhook-timestamp` (seconds) and
 * `webhook-signature`, a space-separated list of `v1,<base64 HMAC-SHA256 of id.timestamp.body>`,
 * one per secret, so that a receiver holding any current secret verifies the delivery and a
 * secret can be rotated without a gap.
 */

const PREFIX = "whsec_"

/** A signing secret as the specification writes it: `whsec_` and the key in base64, 24 to 64 bytes. */
export const parseWebhookSecret = (text: string): Either.Either<Redacted.Redacted<Uint8Array>, string> => {
  const trimmed = text.trim()
  if (!trimmed.startsWith(PREFIX)) return Either.left("a secret is whsec_ followed by base64 (the Standard Webhooks form)")
  const encoded = trimmed.slice(PREFIX.length)
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) return Either.left("the part after whsec_ must be base64")
  const key = Buffer.from(encoded, "base64")
  if (key.length < 24 || key.length > 64) return Either.left(`the key must be 24 to 64 bytes (this one is ${key.length})`)
  return Either.right(Redacted.make(new Uint8Array(key)))
}

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
