import { randomBytes } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { parseWebhookEndpoints } from "../../src/config/webhooks.js"

const secret = () => `whsec_${randomBytes(32).toString("base64")}`
const parse = (vars: Record<string, string>, deployEnv: "development" | "production" = "production") =>
  parseWebhookEndpoints(new Map(Object.entries(vars)), deployEnv)

describe("webhook endpoints from the environment", () => {
  it("none when no WEBHOOK_ variable is set", () => {
    expect(parse({ MONITOR_ENABLED: "true" })).toEqual(Either.right([]))
  })

  it("the default endpoint and named ones, each with its secrets and its event filter", () => {
    const endpoints = Either.getOrThrow(parse({
      WEBHOOK_URL: "https://app.example.com/hooks",
      WEBHOOK_SECRETS: `${secret()}, ${secret()}`,
      WEBHOOK_OPS_URL: "https://ops.example.com/in",
      WEBHOOK_OPS_SECRETS: secret(),
      WEBHOOK_OPS_EVENTS: "connection.needs_reauth,connection.refresh_failing"
    }))
    expect(endpoints.map((e) => [e.name, e.url.toString(), e.secrets.length, e.events === null ? null : [...e.events]])).toEqual([
      ["default", "https://app.example.com/hooks", 2, null],
      ["ops", "https://ops.example.com/in", 1, ["connection.needs_reauth", "connection.refresh_failing"]]
    ])
  })

  it("refuses, one line per problem naming its variable: no secret, a malformed secret, an unknown event, http outside development, secrets without a URL", () => {
    const [b, c] = [secret(), secret()]
    const found = Either.match(parse({
      WEBHOOK_URL: "http://app.example.com/hooks",
      WEBHOOK_SECRETS: "whsec_c2hvcnQ=",
      WEBHOOK_A_URL: "https://a.example.com",
      WEBHOOK_B_URL: "https://b.example.com",
      WEBHOOK_B_SECRETS: b,
      WEBHOOK_B_EVENTS: "connection.exploded",
      WEBHOOK_C_SECRETS: c
    }), { onLeft: (p) => p, onRight: () => [] })
    expect(found).toHaveLength(5)
    expect(found.some((p) => p.startsWith("WEBHOOK_URL: must be https"))).toBe(true)
    expect(found.some((p) => p.startsWith("WEBHOOK_SECRETS: secret 1:"))).toBe(true)
    expect(found.some((p) => p.startsWith("WEBHOOK_A_SECRETS: is required"))).toBe(true)
    expect(found.some((p) => p.startsWith("WEBHOOK_B_EVENTS: unknown event type connection.exploded"))).toBe(true)
    expect(found.some((p) => p.startsWith("WEBHOOK_C_URL: is required"))).toBe(true)
    // No line quotes a secret.
    for (const quoted of ["c2hvcnQ=", b, c]) expect(found.join("\n")).not.toContain(quoted)
  })

  it("http is accepted in development", () => {
    expect(Either.isRight(parse({ WEBHOOK_URL: "http://localhost:3000/hooks", WEBHOOK_SECRETS: secret() }, "development"))).toBe(true)
  })
})
