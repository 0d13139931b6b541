import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { EventRepository } from "../db/EventRepository.js"
import { Api } from "./Api.js"

export const EventsLive = HttpApiBuilder.group(Api, "events", (handlers) =>
  Effect.gen(function*() {
    const events = yield* EventRepository
    return handlers.handle("list", ({ path, urlParams }) =>
      Effect.map(
        events.listByUser(path.user_id, { limit: urlParams.limit ?? 50, before: urlParams.before }),
        (page) => ({ userId: path.user_id, ...page })
      ))
  }))
