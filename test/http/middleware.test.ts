import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { badRequestBody, routeOf } from "../../src/http/middleware.js"
import { AuthorizeRequest, EventsQuery, UserPath } from "../../src/http/schemas.js"

describe("route templates for metrics", () => {
  const platforms = new Set(["gsc", "bing"])

  it("replaces user ids and keeps known platforms", () => {
    expect(routeOf("/v1/users/u-123/connections", platforms)).toBe("/v1/users/{user_id}/connections")
    expect(routeOf("/v1/users/u-123/connections/gsc", platforms)).toBe("/v1/users/{user_id}/connections/gsc")
    expect(routeOf("/v1/users/u-123/connections/gsc/token?x=1", platforms)).toBe("/v1/users/{user_id}/connections/gsc/token")
    expect(routeOf("/v1/users/u-9/onboarding/step-5", platforms)).toBe("/v1/users/{user_id}/onboarding/step-5")
    expect(routeOf("/v1/users/u-9/events?limit=2", platforms)).toBe("/v1/users/{user_id}/events")
    expect(routeOf("/oauth/bing/callback?code=secret", platforms)).toBe("/oauth/bing/callback")
    expect(routeOf("/health/providers", platforms)).toBe("/health/providers")
    expect(routeOf("/v1/connect/sessions", platforms)).toBe("/v1/connect/sessions")
    expect(routeOf("/v1/connect/session/platforms/gsc/authorize", platforms)).toBe("/v1/connect/session/platforms/gsc/authorize")
    expect(routeOf("/v1/connect/session/platforms/zz9", platforms)).toBe("/v1/connect/session/platforms/{platform}")
    expect(routeOf("/v1/webhooks/deliveries/8812/retry", platforms)).toBe("/v1/webhooks/deliveries/{id}/retry")
    expect(routeOf("/connect", platforms)).toBe("/connect")
  })

  it("never lets a caller create new series", () => {
    expect(routeOf("/v1/users/u/connections/random-xyz", platforms)).toBe("/v1/users/{user_id}/connections/{platform}")
    expect(routeOf("/v1/users/u/connections/random-xyz/token", platforms)).toBe("/v1/users/{user_id}/connections/{platform}/token")
    expect(routeOf("/oauth/anything/callback", platforms)).toBe("/oauth/{platform}/callback")
    for (const path of [
      "/wp-admin/install.php",
      "/v1/users/u/connections/gsc/rand123",
      "/v1/users/u/connections/zz9/rand123",
      "/v1/users/u/connections/gsc/token/more",
      "/v1/users/u/zz1/q",
      "/v1/users/u/zz1",
      "/v1/users/u/onboarding/step-6",
      "/v1/users/u/events/1",
      "/oauth/gsc/callback/x",
      "/health/x",
      "/v1/connect/session/platforms/gsc/token",
      "/v1/webhooks/deliveries/1/x",
      "/connect/x"
    ]) {
      expect(routeOf(path, platforms), path).toBe("other")
    }
  })
})

const decodeError = <A, I>(schema: Schema.Schema<A, I>, input: unknown) =>
  Schema.decodeUnknown(schema)(input).pipe(
    Effect.flip,
    Effect.flatMap(HttpApiDecodeError.fromParseError),
    Effect.map(badRequestBody)
  )

describe("400 bodies for decode errors", () => {
  it.effect("say what a field must be, every member of a union, without \"undefined\"", () =>
    Effect.gen(function*() {
      expect(yield* decodeError(AuthorizeRequest, { mode: "tab" })).toEqual({
        _tag: "BadRequest",
        field: "mode",
        message: "mode must be \"redirect\" or \"popup\"; got \"tab\""
      })
    }))

  it.effect("name the field and keep a message the schema states", () =>
    Effect.gen(function*() {
      expect(yield* decodeError(UserPath, { user_id: "a b" })).toEqual({
        _tag: "BadRequest",
        field: "user_id",
        message: "user_id must be 1-200 characters of letters, digits and . _ : @ | + -"
      })
    }))

  it.effect("echo at most 40 characters of the value, and no schema", () =>
    Effect.gen(function*() {
      const body = yield* decodeError(AuthorizeRequest, { mode: "m".repeat(600) })
      expect(body.field).toBe("mode")
      expect(body.message).not.toMatch(/m{41}|readonly|└─/)
      expect(body.message.length).toBeLessThan(120)
      const long = yield* decodeError(AuthorizeRequest, { return_to: "r".repeat(3000) })
      expect(long.field).toBe("return_to")
      expect(long.message).not.toMatch(/r{41}/)
      const limit = yield* decodeError(EventsQuery, { limit: "9".repeat(300) })
      expect(limit.field).toBe("limit")
      expect(limit.message).not.toMatch(/9{41}/)
      const notNumber = yield* decodeError(EventsQuery, { limit: "n".repeat(300) })
      expect(notNumber.message).not.toMatch(/n{41}/)
    }))

  it.effect("a body that is not an object names the body", () =>
    Effect.gen(function*() {
      expect(yield* decodeError(AuthorizeRequest, ["x"])).toEqual({ _tag: "BadRequest", field: "body", message: "The body must be a JSON object" })
    }))

  it.effect("a missing field says it is required", () =>
    Effect.gen(function*() {
      expect(yield* decodeError(UserPath, {})).toEqual({ _tag: "BadRequest", field: "user_id", message: "user_id is required" })
    }))
})
