import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { Api } from "./Api.js"

export const PlatformsLive = HttpApiBuilder.group(Api, "platforms", (handlers) =>
  Effect.gen(function*() {
    const registry = yield* ProviderRegistry
    return handlers.handle("list", () => Effect.map(registry.list, (platforms) => ({ platforms })))
  }))
