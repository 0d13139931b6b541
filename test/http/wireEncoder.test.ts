import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, FastCheck, Schema } from "effect"
import * as Answers from "../../src/http/answers.js"
import { wireEncoder } from "../../src/http/wireEncoder.js"

/** Random domain values of the schema's Type: the encoder gives what Schema's encoder gives. */
const agreesWithSchema = <A, I>(schema: Schema.Schema<A, I>) => {
  const fast = wireEncoder(schema)
  const encode = Schema.encodeSync(schema)
  FastCheck.assert(
    FastCheck.property(Arbitrary.make(Schema.typeSchema(schema)), (value) => {
      const expected = encode(value)
      const actual = fast(value)
      expect(actual).toStrictEqual(expected)
      expect(JSON.stringify(actual)).toBe(JSON.stringify(expected))
    }),
    { numRuns: 300 }
  )
}

describe("wireEncoder", () => {
  it("encodes statuses, and the list of a user's, as Schema does", () => {
    agreesWithSchema(Answers.ConnectionStatus)
    agreesWithSchema(Answers.Connections)
  })

  it("encodes a record with a __proto__ key (JSON.parse makes it an own property) as Schema does", () => {
    const status = {
      platform: "gsc",
      displayName: "Google Search Console",
      configured: true,
      connected: false,
      status: "disconnected" as const,
      accounts: [{
        accountId: "",
        connected: false,
        status: "expired" as const,
        expiresAt: null,
        scope: "",
        connectedAt: new Date(0),
        lastRefreshedAt: new Date(0),
        lastError: null,
        providerData: JSON.parse(`{"__proto__": [], "site": "a"}`) as Record<string, unknown>
      }],
      details: JSON.parse(`{"__proto__": {"x": 1}}`) as Record<string, unknown>,
      error: null,
      degraded: false,
      degradedReason: null
    }
    const expected = Schema.encodeSync(Answers.ConnectionStatus)(status)
    const actual = wireEncoder(Answers.ConnectionStatus)(status)
    expect(actual).toStrictEqual(expected)
    expect(JSON.stringify(actual)).toBe(JSON.stringify(expected))
  })

  it("encodes every other answer of the API as Schema does", () => {
    agreesWithSchema(Answers.Platforms)
    agreesWithSchema(Answers.ProvidersHealth)
    agreesWithSchema(Answers.AuthUrl)
    agreesWithSchema(Answers.AccessToken)
    agreesWithSchema(Answers.Disconnected)
    agreesWithSchema(Answers.StepFive)
    agreesWithSchema(Answers.Events)
    agreesWithSchema(Answers.Health)
  })

  it("hands what it does not walk itself to Schema", () => {
    const Optional = Schema.Struct({ a: Schema.optional(Schema.NumberFromString), b: Schema.Tuple(Schema.String, Schema.Number) })
    expect(wireEncoder(Optional)({ b: ["x", 1] })).toStrictEqual({ b: ["x", 1] })
    expect(wireEncoder(Optional)({ a: 2, b: ["x", 1] })).toStrictEqual({ a: "2", b: ["x", 1] })
  })
})
