import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { Api } from "./Api.js"
import { breakerHealthJson } from "./json.js"

export const PlatformsLive = HttpApiBuilder.group(Api, "platforms", (handlers) =>
  Effect.gen(function*() {
    const registry = yield* ProviderRegistry
    return handlers.handle("list", () =>
      Effect.map(registry.list, (list) => ({
        platforms: list.map((p) => ({
          key: p.key,
          display_name: p.displayName,
          configured: p.configured,
          state: p.state,
          problems: p.problems,
          health: p.health === null ? null : breakerHealthJson(p.health)
        }))
      })))
  }))
