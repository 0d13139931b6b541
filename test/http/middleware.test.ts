import { describe, expect, it } from "@effect/vitest"
import { routeOf } from "../../src/http/middleware.js"

describe("route templates for metrics", () => {
  const platforms = new Set(["gsc", "bing"])

  it("replaces user ids and keeps known platforms", () => {
    expect(routeOf("/v1/users/u-123/connections", platforms)).toBe("/v1/users/{user_id}/connections")
    expect(routeOf("/v1/users/u-123/connections/gsc/token?x=1", platforms)).toBe("/v1/users/{user_id}/connections/gsc/token")
    expect(routeOf("/v1/users/u-9/onboarding/step-5", platforms)).toBe("/v1/users/{user_id}/onboarding/step-5")
    expect(routeOf("/oauth/bing/callback?code=secret", platforms)).toBe("/oauth/bing/callback")
  })

  it("never lets a caller create new series", () => {
    expect(routeOf("/v1/users/u/connections/random-xyz", platforms)).toBe("/v1/users/{user_id}/connections/{platform}")
    expect(routeOf("/oauth/anything/callback", platforms)).toBe("/oauth/{platform}/callback")
    expect(routeOf("/wp-admin/install.php", platforms)).toBe("other")
  })
})
