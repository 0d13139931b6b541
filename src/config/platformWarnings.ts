import { Effect } from "effect"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"

/**
 * One warning per problem of each misconfigured platform, at start: a platform is otherwise
 * only built on first use, so a bad setting would surface with the first user's request. The
 * platform stays listed as misconfigured and the others work.
 */
export const warnMisconfiguredPlatforms = Effect.gen(function*() {
  const registry = yield* ProviderRegistry
  for (const platform of yield* registry.list) {
    if (platform.state !== "misconfigured") continue
    for (const problem of platform.problems) {
      yield* Effect.logWarning(`platform ${platform.key} is misconfigured and unavailable until fixed: ${problem}`)
    }
  }
})
