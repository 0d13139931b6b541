import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { Connect } from "../integrations/Connect.js"
import { Tokens } from "../integrations/Tokens.js"
import { Statuses } from "../status/Statuses.js"
import { StatusCache } from "./StatusCache.js"
import { Api, Caller, Forbidden } from "./Api.js"

export const ConnectionsLive = HttpApiBuilder.group(Api, "connections", (handlers) =>
  Effect.gen(function*() {
    const connect = yield* Connect
    const tokens = yield* Tokens
    const statuses = yield* Statuses
    const cache = yield* StatusCache
    return handlers
      .handle("list", ({ path }) =>
        Effect.map(cache.statuses(path.user_id), ({ value }) => ({ userId: path.user_id, connections: value })))
      .handle("get", ({ path }) => Effect.map(cache.status(path.user_id, path.platform), ({ value }) => value))
      .handle("authorize", ({ path, payload }) =>
        connect.authorize(path.user_id, path.platform, { returnTo: payload.return_to, mode: payload.mode }))
      .handle("confirm", ({ path, payload }) => connect.confirm(path.user_id, path.platform, payload.confirmation))
      .handle("refresh", ({ path }) =>
        Effect.zipRight(tokens.refresh(path.user_id, path.platform), statuses.status(path.user_id, path.platform)))
      .handle("token", ({ path }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          if (!caller.tokenScope) return yield* new Forbidden({ message: "This API key may not fetch access tokens (see TOKEN_API_KEYS)" })
          return yield* tokens.accessToken(path.user_id, path.platform)
        }))
      .handle("disconnect", ({ path }) =>
        Effect.map(connect.disconnect(path.user_id, path.platform), (r) => ({ platform: path.platform, ...r })))
  }))
