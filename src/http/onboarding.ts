import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { Api } from "./Api.js"
import { StatusCache } from "./StatusCache.js"

/** Onboarding step 5: at least one platform must be connected (the original service's semantics). */
export const OnboardingLive = HttpApiBuilder.group(Api, "onboarding", (handlers) =>
  Effect.gen(function*() {
    const cache = yield* StatusCache
    return handlers.handle("stepFive", ({ path }) =>
      Effect.map(cache.statuses(path.user_id), ({ value }) => {
        const connected = value
          .filter((s) => s.connected)
          .map((s) => ({ platform: s.platform, displayName: s.displayName, details: s.details }))
        return connected.length === 0
          ? { valid: false as const, error: "At least one platform must be connected", connectedPlatforms: [] }
          : { valid: true as const, connectedPlatforms: connected, message: `Connected to ${connected.length} platform(s)` }
      }))
  }))
