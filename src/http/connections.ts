import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Option, Redacted } from "effect"
import { Integrations } from "../integrations/Integrations.js"
import { StatusCache } from "./StatusCache.js"
import { Api, Caller, Forbidden } from "./Api.js"
import { connectionStatusJson } from "./json.js"

const jsonResponse = (body: string) => HttpServerResponse.text(body, { contentType: "application/json" })

export const ConnectionsLive = HttpApiBuilder.group(Api, "connections", (handlers) =>
  Effect.gen(function*() {
    const integrations = yield* Integrations
    const cache = yield* StatusCache
    return handlers
      // The hot path answers with the cached JSON, not re-encoded (it was made from the same schema's fields).
      .handle("list", ({ path }) => Effect.map(cache.statuses(path.user_id), ({ body }) => jsonResponse(body)))
      .handle("get", ({ path }) => Effect.map(cache.status(path.user_id, path.platform), ({ body }) => jsonResponse(body)))
      .handle("authorize", ({ path, payload }) =>
        Effect.map(
          integrations.authorize(path.user_id, path.platform, { returnTo: payload.return_to, mode: payload.mode }),
          (p) => ({
            auth_url: p.authUrl,
            state: Redacted.value(p.state),
            expires_at: p.expiresAt.toISOString(),
            details: {
              platform: p.details.platform,
              display_name: p.details.displayName,
              mode: p.details.mode,
              scopes: p.details.scopes,
              pkce: p.details.pkce
            }
          })
        ))
      .handle("confirm", ({ path, payload }) =>
        Effect.map(integrations.confirm(path.user_id, path.platform, payload.confirmation), connectionStatusJson))
      .handle("refresh", ({ path }) =>
        integrations.refresh(path.user_id, path.platform).pipe(
          Effect.zipRight(integrations.status(path.user_id, path.platform)),
          Effect.map(connectionStatusJson)
        ))
      .handle("token", ({ path }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          if (!caller.tokenScope) return yield* new Forbidden({ message: "This API key may not fetch access tokens (see TOKEN_API_KEYS)" })
          const token = yield* integrations.accessToken(path.user_id, path.platform)
          return {
            access_token: Redacted.value(token.accessToken),
            token_type: token.tokenType,
            expires_at: token.expiresAt === null ? null : token.expiresAt.toISOString(),
            scope: token.scope,
            account_id: token.accountId,
            refresh_error: Option.getOrNull(token.refreshError)
          }
        }))
      .handle("disconnect", ({ path }) =>
        Effect.map(integrations.disconnect(path.user_id, path.platform), (r) => ({ platform: path.platform, ...r })))
  }))
