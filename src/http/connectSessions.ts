import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect, Layer, Redacted } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { Connect } from "../integrations/Connect.js"
import { ConnectSessions } from "../integrations/ConnectSessions.js"
import { Statuses } from "../status/Statuses.js"
import { Api, ConnectSession, SessionAuthentication } from "./Api.js"

/** POST /v1/connect/sessions, for the application's back end (API key). */
export const ConnectSessionsLive = HttpApiBuilder.group(Api, "connectSessions", (handlers) =>
  Effect.gen(function*() {
    const sessions = yield* ConnectSessions
    return handlers.handle("create", ({ payload }) =>
      Effect.map(
        sessions.create({
          userId: payload.user_id,
          platforms: payload.platforms,
          returnTo: payload.return_to,
          allowDisconnect: payload.allow_disconnect
        }),
        ({ connectUrl, session }) => ({ connectUrl, expiresAt: session.expiresAt, platforms: session.platforms })
      ))
  }))

/** The connect page's calls: the session's user and platforms only, nothing else reachable. */
export const ConnectSessionLive = HttpApiBuilder.group(Api, "connectSession", (handlers) =>
  Effect.gen(function*() {
    const sessions = yield* ConnectSessions
    const statuses = yield* Statuses
    const connect = yield* Connect
    const app = yield* AppConfig
    return handlers
      .handle("view", () =>
        Effect.gen(function*() {
          const session = yield* ConnectSession
          const all = yield* statuses.statuses(session.userId)
          const platforms = session.platforms.flatMap((key) => all.filter((s) => s.platform === key))
          return { expiresAt: session.expiresAt, allowDisconnect: session.allowDisconnect, returnTo: session.returnTo, platforms }
        }))
      .handle("authorize", ({ path, payload }) =>
        Effect.gen(function*() {
          const session = yield* ConnectSession
          yield* sessions.offered(session, path.platform)
          const mode = payload.mode ?? "popup"
          // Redirect mode comes back to the page, which holds the session in the tab's storage meanwhile.
          return yield* connect.authorize(session.userId, path.platform, mode === "popup" ? { mode } : { mode, returnTo: app.connect.pageUrl.toString() })
        }))
      .handle("disconnect", ({ path }) =>
        Effect.gen(function*() {
          const session = yield* ConnectSession
          yield* sessions.mayDisconnect(session, path.platform)
          return { platform: path.platform, ...(yield* connect.disconnect(session.userId, path.platform)) }
        }))
  }))

export const SessionAuthenticationLive = Layer.effect(
  SessionAuthentication,
  Effect.map(ConnectSessions, (sessions) => ({
    session: (secret: Redacted.Redacted) => sessions.open(Redacted.value(secret))
  }))
)
