import { randomBytes } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { Webhook } from "standardwebhooks"
import { parseWebhookSecret } from "../../src/config/webhooks.js"
import { signDelivery } from "../../src/crypto/webhookSignature.js"

// Verified with the specification's reference library, not with our own code.
const secretText = () => `whsec_${randomBytes(32).toString("base64")}`
const parsed = (text: string) => Either.getOrThrow(parseWebhookSecret(text))
const body = JSON.stringify({ type: "connection.needs_reauth", id: "evt_1", timestamp: "2026-12-02T10:00:00.000Z", data: { user_id: "u1" } })

describe("webhook signatures (Standard Webhooks)", () => {
  it("a delivery verifies with the reference library, and altered content does not", () => {
    const secret = secretText()
    const headers = signDelivery([parsed(secret)], "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", new Date(), body)
    const receiver = new Webhook(secret)
    expect(receiver.verify(body, { ...headers })).toEqual(JSON.parse(body))
    expect(() => receiver.verify(body.replace("u1", "u2"), { ...headers })).toThrow()
    expect(() => receiver.verify(body, { ...headers, "webhook-id": "msg_other" })).toThrow()
    expect(() => new Webhook(secretText()).verify(body, { ...headers })).toThrow()
  })

  it("every current secret signs: receivers holding the old or the new secret both verify during a rotation", () => {
    const [oldSecret, newSecret] = [secretText(), secretText()]
    const headers = signDelivery([parsed(newSecret), parsed(oldSecret)], "msg_rotation", new Date(), body)
    expect(headers["webhook-signature"].split(" ")).toHaveLength(2)
    expect(new Webhook(oldSecret).verify(body, { ...headers })).toEqual(JSON.parse(body))
    expect(new Webhook(newSecret).verify(body, { ...headers })).toEqual(JSON.parse(body))
  })

  it("the timestamp is the attempt's, in seconds; the reference library refuses one too old (replays)", () => {
    const secret = secretText()
    const at = new Date(Date.now() - 60 * 60 * 1000)
    const headers = signDelivery([parsed(secret)], "msg_old", at, body)
    expect(headers["webhook-timestamp"]).toBe(String(Math.floor(at.getTime() / 1000)))
    expect(() => new Webhook(secret).verify(body, { ...headers })).toThrow()
  })

  it("reads secrets in the whsec_ form and refuses anything else, saying why", () => {
    expect(Either.isRight(parseWebhookSecret(secretText()))).toBe(true)
    for (const bad of ["", "secret", `whsec_${randomBytes(8).toString("base64")}`, "whsec_not*base64", `wh_${randomBytes(32).toString("base64")}`]) {
      expect(Either.isLeft(parseWebhookSecret(bad)), bad).toBe(true)
    }
  })
})
