import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Clock, Effect, Option, Redacted } from "effect"
import { TokenCipher } from "../crypto/TokenCipher.js"
import { Imports } from "../integrations/Imports.js"
import { accountStatus } from "../status/status.js"
import { Connect } from "../integrations/Connect.js"
import { Tokens } from "../integrations/Tokens.js"
import { Statuses } from "../status/Statuses.js"
import { StatusCache } from "./StatusCache.js"
import { Api, BadRequest, Caller, Forbidden } from "./Api.js"

export const ConnectionsLive = HttpApiBuilder.group(Api, "connections", (handlers) =>
  Effect.gen(function*() {
    const connect = yield* Connect
    const tokens = yield* Tokens
    const statuses = yield* Statuses
    const imports = yield* Imports
    const cipher = yield* TokenCipher
    const cache = yield* StatusCache
    return handlers
      .handle("list", ({ path }) =>
        Effect.map(cache.statuses(path.user_id), ({ value }) => ({ userId: path.user_id, connections: value })))
      .handle("status", ({ path }) => Effect.map(cache.status(path.user_id, path.platform), ({ value }) => value))
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
      .handle("import", ({ path, payload }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          if (!caller.tokenScope) return yield* new Forbidden({ message: "This API key may not import tokens (see TOKEN_API_KEYS)" })
          const imported = yield* imports.importOne({
            userId: path.user_id,
            platform: path.platform,
            accountId: payload.account_id ?? "",
            accessToken: Option.map(Option.fromNullable(payload.access_token), Redacted.make),
            refreshToken: Option.map(Option.fromNullable(payload.refresh_token), Redacted.make),
            tokenType: payload.token_type ?? null,
            scope: payload.scope ?? null,
            expiresAt: payload.expires_at ?? null,
            providerData: payload.provider_data ?? {},
            updatedAt: payload.updated_at ?? null
          }).pipe(Effect.catchTag("InvalidImport", (e) => Effect.fail(new BadRequest({ field: e.field, message: e.message }))))
          if (imported.outcome === "superseded" || Option.isNone(imported.connection)) return yield* Effect.dieMessage("an import gave no row")
          const now = new Date(yield* Clock.currentTimeMillis)
          return { outcome: imported.outcome, platform: path.platform, account: accountStatus(imported.connection.value, now, cipher.knows) }
        }))
      .handle("disconnect", ({ path }) =>
        Effect.map(connect.disconnect(path.user_id, path.platform), (r) => ({ platform: path.platform, ...r })))
  }))
