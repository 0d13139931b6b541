import { Clock, Duration, Effect, Match, Option, type Redacted } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { TokenCipher } from "../crypto/TokenCipher.js"
import { ConnectionRepository } from "../db/ConnectionRepository.js"
import type { Connection } from "../domain/Connection.js"
import { NotConnected, ReauthRequired } from "../domain/errors.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { isConnected, platformStatus } from "../status/status.js"
import { Refresher } from "./Refresher.js"
import type { RefreshFailure } from "./refreshPolicy.js"

export interface FreshToken {
  readonly accessToken: Redacted.Redacted<string>
  readonly tokenType: string | null
  readonly expiresAt: Date | null
  readonly scope: string | null
  readonly accountId: string
  /**
   * Set when a refresh was due but the stored token, still unexpired, is returned instead:
   * the refresh failed without ending the connection (the error's tag: ProviderUnavailable,
   * RateLimited, ...), or it was still under way after TOKEN_REFRESH_WAIT (REFRESH_PENDING).
   */
  readonly refreshError: Option.Option<string>
}

/**
 * The refresh error of a stored token handed out while its due refresh is still under way,
 * here or in another process: the refresh goes on and stores its result, so a later call
 * gets the new token.
 */
export const REFRESH_PENDING = "RefreshPending"

/**
 * Access tokens for trusted back ends: the connection to use, refreshed first when it is
 * about to expire, and a refresh or validation on demand.
 */
export class Tokens extends Effect.Service<Tokens>()("Integrations/Tokens", {
  dependencies: [ProviderRegistry.Default, Refresher.Default, ConnectionRepository.Default, TokenCipher.Default],
  effect: Effect.gen(function*() {
    const registry = yield* ProviderRegistry
    const refresher = yield* Refresher
    const connections = yield* ConnectionRepository
    const cipher = yield* TokenCipher
    const app = yield* AppConfig
    const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

    /** Whether this process can open the row's tokens: its key id is configured. */
    const readable = (row: Connection) => row.keyId === null || cipher.knows(row.keyId)

    /**
     * The connection to use: the given account, else the most recently updated connected one,
     * one whose tokens this process can open first.
     */
    const pick = (userId: string, platform: string, accountId?: string) =>
      Effect.gen(function*() {
        yield* registry.definition(platform)
        const t = yield* now
        const rows = (yield* connections.findByUserAndPlatform(userId, platform)).filter((r) => accountId === undefined || r.accountId === accountId)
        const usable = rows.filter((r) => isConnected(r, t))
          .sort((a, b) => Number(readable(b)) - Number(readable(a)) || b.updatedAt.getTime() - a.updatedAt.getTime())[0]
        if (usable !== undefined) return usable
        const state = platformStatus({ key: platform, displayName: platform, configured: true }, rows, t, cipher.knows).status
        if (state === "needs_reauth") {
          return yield* new ReauthRequired({ platform, status: state, message: "the platform refused the stored authorisation: the user must connect again" })
        }
        return yield* new NotConnected({ platform, status: state })
      })

    /**
     * A refresh failure after which the stored token may still be handed out: the platform
     * could not be reached or answered oddly, or a spurious invalid_grant was tolerated. Only
     * what ended the connection (needs_reauth) or shows our own misconfiguration fails.
     */
    const keepsStoredToken = Match.type<RefreshFailure>().pipe(
      Match.tagsExhaustive({
        ProviderUnavailable: () => true,
        RateLimited: () => true,
        CircuitOpen: () => true,
        RefreshInProgress: () => true,
        ProviderResponseInvalid: () => true,
        // The platform was not called: the stored token is as good as it was.
        LeaseTooShort: () => true,
        // Tolerated ones arrive as ProviderUnavailable; this one ended the connection, which the re-read then shows.
        InvalidGrant: () => true,
        InvalidClient: () => false,
        NotConnected: () => false,
        ConnectionUnreadable: () => false,
        DatabaseUnavailable: () => false,
        PlatformNotConfigured: () => false,
        UnknownPlatform: () => false
      })
    )

    const usableAt = (row: Connection, t: Date) => row.status === "active" && row.expiresAt !== null && row.expiresAt.getTime() > t.getTime()

    /**
     * Refreshes a token about to expire. While the stored token is still valid the caller
     * waits for the refresh at most TOKEN_REFRESH_WAIT, then gets the stored token with
     * RefreshPending while the refresh goes on in the background (a slow platform does not
     * hold the caller for its whole retry budget, nor does another process's lease); an
     * expired one is waited for to the end. When the refresh fails, falls back to the stored
     * token while it is valid.
     */
    const refreshDue = (connection: Connection) =>
      Effect.gen(function*() {
        if (usableAt(connection, yield* now)) {
          const refreshed = yield* refresher.refreshWithin(connection, app.tokens.refreshWait)
          if (Option.isSome(refreshed)) return { connection: refreshed.value, refreshError: Option.none<string>() }
          // Read again: the connection may have been ended meanwhile, or its token expired while we waited.
          const current = Option.getOrElse(yield* connections.findById(connection.id), () => connection)
          if (usableAt(current, yield* now)) {
            yield* Effect.logDebug("refresh still under way; the stored token is returned").pipe(Effect.annotateLogs({ platform: connection.platform }))
            return { connection: current, refreshError: Option.some(REFRESH_PENDING) }
          }
        }
        return { connection: yield* refresher.refresh(connection, { force: false }), refreshError: Option.none<string>() }
      }).pipe(
        Effect.catchAll((error) =>
          Effect.gen(function*() {
            if (!keepsStoredToken(error)) return yield* error
            const current = Option.getOrElse(yield* connections.findById(connection.id), () => connection)
            if (!usableAt(current, yield* now)) return yield* error
            yield* Effect.logWarning("refresh failed; the stored token is still valid and is returned").pipe(
              Effect.annotateLogs({ platform: connection.platform, error: error._tag })
            )
            return { connection: current, refreshError: Option.some(error._tag) }
          })
        )
      )

    const accessToken = (userId: string, platform: string, accountId?: string) =>
      Effect.gen(function*() {
        const picked = yield* pick(userId, platform, accountId)
        const definition = yield* registry.definition(platform)
        const t = yield* now
        // Without a refresh token (or a refresh grant) there is nothing to do but hand out the
        // token while it lasts: "connected" says it is usable until it expires.
        const due = picked.expiresAt !== null && picked.hasRefreshToken && definition.refresh !== "none" &&
          picked.expiresAt.getTime() - t.getTime() <= Duration.toMillis(app.tokens.minTtl)
        const { connection, refreshError } = due ? yield* refreshDue(picked) : { connection: picked, refreshError: Option.none<string>() }
        // Another process may have ended the connection while we waited for its refresh.
        if (!isConnected(connection, yield* now)) return yield* new NotConnected({ platform, status: connection.status })
        const tokens = yield* connections.tokens(connection)
        return {
          accessToken: tokens.accessToken,
          tokenType: connection.tokenType,
          expiresAt: connection.expiresAt,
          scope: connection.scope,
          accountId: connection.accountId,
          refreshError
        } satisfies FreshToken
      })

    /** Refreshes now (or, for tokens that do not expire, validates them). */
    const refresh = (userId: string, platform: string, accountId?: string) =>
      Effect.gen(function*() {
        const connection = yield* pick(userId, platform, accountId)
        const definition = yield* registry.definition(platform)
        return definition.refresh === "none" || connection.expiresAt === null && !connection.hasRefreshToken
          ? yield* refresher.validate(connection)
          : yield* refresher.refresh(connection, { force: true })
      })

    return { accessToken, refresh } as const
  })
}) {}
