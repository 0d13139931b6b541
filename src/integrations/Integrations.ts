import { Clock, Duration, Effect, Either, Match, Option, Redacted } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { TokenCipher } from "../crypto/TokenCipher.js"
import { ConnectionRepository } from "../db/ConnectionRepository.js"
import { EventRepository } from "../db/EventRepository.js"
import { type AuthMode, StateRepository } from "../db/StateRepository.js"
import type { Connection } from "../domain/Connection.js"
import {
  AuthorizationDenied,
  InvalidCallback,
  InvalidReturnTo,
  InvalidState,
  NotConnected,
  type DatabaseUnavailable,
  type PlatformNotConfigured,
  type ProviderError,
  type StateExpired,
  type UnknownPlatform
} from "../domain/errors.js"
import { challengeS256, generateState, generateVerifier, hashState } from "../oauth/pkce.js"
import { checkIssuer, type IssuerMismatch } from "../oauth/issuer.js"
import { checkReturnTo } from "../oauth/redirectPolicy.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { makeBatcher } from "./batching.js"
import { StatusChanges } from "./StatusChanges.js"
import { isConnected, platformStatus } from "./status.js"
import { Grants } from "./Grants.js"
import { Refresher, type RefreshFailure } from "./Refresher.js"

/** An authorisation request lives 10 minutes (RFC 9700 recommends short-lived state). */
export const STATE_TTL = Duration.minutes(10)

export interface AuthorizeOptions {
  readonly returnTo?: string | undefined
  readonly mode?: AuthMode | undefined
}

export interface AuthUrlPayload {
  readonly authUrl: string
  readonly state: Redacted.Redacted<string>
  readonly expiresAt: Date
  readonly details: {
    readonly platform: string
    readonly displayName: string
    readonly mode: AuthMode
    readonly scopes: ReadonlyArray<string>
    readonly pkce: boolean
  }
}

export interface CallbackParams {
  readonly state?: string | undefined
  readonly code?: string | undefined
  readonly error?: string | undefined
  /** RFC 9207's issuer identifier, when the platform sent one. */
  readonly iss?: string | undefined
}

/**
 * What a successful callback gave: a connection, or (OAUTH_CONFIRMATION=required) a grant held
 * until the application confirms it with this one-time code for the user who completed the flow.
 */
export type CallbackSuccess =
  | { readonly _tag: "Connected"; readonly connection: Connection }
  | { readonly _tag: "Pending"; readonly confirmation: Redacted.Redacted<string> }

export interface CallbackResult<E> {
  readonly platform: string
  /** Where to send the browser and how; null when the state could not be read. */
  readonly returnTo: string | null
  readonly mode: AuthMode | null
  readonly outcome: Either.Either<CallbackSuccess, E>
}

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

/** Why a callback did not produce a connection. */
export type CallbackError =
  | InvalidState
  | StateExpired
  | AuthorizationDenied
  | InvalidCallback
  | IssuerMismatch
  | PlatformNotConfigured
  | UnknownPlatform
  | DatabaseUnavailable
  | ProviderError

const OAUTH_ERROR_CODE = /^[a-z0-9_.-]{1,64}$/i

const stateContext = (hash: Uint8Array, userId: string, platform: string) =>
  ["state", Buffer.from(hash).toString("hex"), userId, platform]

/**
 * The flows over all platforms: authorize, callback, status, fresh token, refresh,
 * disconnect. Platforms differ only in their definitions; storage is shared.
 */
export class Integrations extends Effect.Service<Integrations>()("Integrations/Integrations", {
  scoped: Effect.gen(function*() {
    const registry = yield* ProviderRegistry
    const refresher = yield* Refresher
    const connections = yield* ConnectionRepository
    const states = yield* StateRepository
    const events = yield* EventRepository
    const cipher = yield* TokenCipher
    const changes = yield* StatusChanges
    const grants = yield* Grants
    const app = yield* AppConfig
    const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))
    const policy = {
      deployEnv: app.deployEnv,
      frontendUrl: app.frontendUrl,
      allowedOrigins: app.allowedOrigins,
      strictEnvMatch: app.oauth.strictEnvMatch
    }

    const authorize = (userId: string, platform: string, options: AuthorizeOptions = {}) =>
      Effect.gen(function*() {
        const provider = yield* registry.get(platform)
        const returnTo = options.returnTo === undefined
          ? null
          : yield* Either.match(checkReturnTo(options.returnTo, policy), {
            onLeft: (rule) => Effect.fail(new InvalidReturnTo({ rule })),
            onRight: (url) => Effect.succeed(url.toString())
          })
        const mode = options.mode ?? "redirect"
        const t = yield* now
        const state = yield* generateState
        const stateHash = hashState(Redacted.value(state))
        const verifier = provider.settings.pkce ? Option.some(yield* generateVerifier) : Option.none()
        const sealedVerifier = Option.isSome(verifier)
          ? yield* cipher.seal(verifier.value, stateContext(stateHash, userId, platform))
          : null
        const expiresAt = new Date(t.getTime() + Duration.toMillis(STATE_TTL))
        yield* states.create({
          stateHash,
          userId,
          platform,
          codeVerifier: sealedVerifier,
          redirectUri: provider.settings.redirectUri,
          returnTo,
          mode,
          expiresAt
        }, t, app.oauth.maxPending)
        const authUrl = yield* provider.authorizationUrl({
          state,
          codeChallenge: Option.map(verifier, challengeS256),
          redirectUri: provider.settings.redirectUri
        })
        return {
          authUrl,
          state,
          expiresAt,
          details: {
            platform,
            displayName: provider.displayName,
            mode,
            scopes: provider.settings.scopes,
            pkce: provider.settings.pkce
          }
        } satisfies AuthUrlPayload
      })

    /** Everything after the state was consumed; failures here still know where to return. */
    const exchange = (platform: string, stored: Effect.Effect.Success<ReturnType<typeof states.consume>>, params: CallbackParams) =>
      Effect.gen(function*() {
        if (stored.platform !== platform) return yield* new InvalidState({ reason: "platform-mismatch" })
        // RFC 9207 §2.4: before anything else of the response is used, an error included.
        yield* checkIssuer(yield* registry.definition(platform), params.iss)
        if (params.error !== undefined) {
          const error = OAUTH_ERROR_CODE.test(params.error) ? params.error : "invalid_error_code"
          return yield* new AuthorizationDenied({ platform, error })
        }
        if (params.code === undefined || params.code === "") return yield* new InvalidCallback({ platform, reason: "missing-code" })
        const provider = yield* registry.get(platform)
        const codeVerifier = stored.codeVerifier === null || stored.keyId === null
          ? Option.none()
          : Option.some(
            yield* cipher.open({ keyId: stored.keyId, bytes: stored.codeVerifier }, stateContext(stored.stateHash, stored.userId, platform)).pipe(
              Effect.mapError(() => new InvalidState({ reason: "unknown" }))
            )
          )
        const grant = yield* provider.exchangeCode({ code: params.code, codeVerifier, redirectUri: stored.redirectUri })
        const account = yield* provider.account(grant)
        const t = yield* now
        const issued = {
          userId: stored.userId,
          platform,
          accountId: account.accountId,
          providerData: account.providerData,
          tokens: {
            accessToken: grant.accessToken,
            refreshToken: grant.refreshToken,
            tokenType: Option.getOrNull(grant.tokenType),
            // The scope actually granted: the user may grant less than was asked.
            scope: Option.getOrElse(grant.scope, () => provider.settings.scopes.join(provider.definition.scopeSeparator)),
            expiresAt: Option.match(grant.expiresIn, { onNone: () => null, onSome: (s) => new Date(t.getTime() + s * 1000) })
          }
        }
        if (app.oauth.confirmation === "off") {
          return { _tag: "Connected", connection: yield* grants.connect(issued, stored.createdAt) } satisfies CallbackSuccess
        }
        // The code is good for as long as the authorisation request was.
        return { _tag: "Pending", confirmation: yield* grants.hold(issued, stored.createdAt, stored.expiresAt) } satisfies CallbackSuccess
      })

    const completeCallback = (
      platform: string,
      params: CallbackParams
    ): Effect.Effect<CallbackResult<CallbackError>, UnknownPlatform> =>
      Effect.gen(function*() {
        yield* registry.definition(platform)
        const t = yield* now
        if (params.state === undefined || params.state === "") {
          return { platform, returnTo: null, mode: null, outcome: Either.left<CallbackError>(new InvalidState({ reason: "missing" })) }
        }
        const consumed = yield* Effect.either(states.consume(hashState(params.state), t))
        if (Either.isLeft(consumed)) return { platform, returnTo: null, mode: null, outcome: Either.left<CallbackError>(consumed.left) }
        const stored = consumed.right
        const outcome = yield* Effect.either(exchange(platform, stored, params))
        if (Either.isLeft(outcome)) {
          yield* Effect.logWarning("callback refused").pipe(Effect.annotateLogs({ platform, reason: outcome.left._tag }))
        }
        return { platform, returnTo: stored.returnTo, mode: stored.mode, outcome }
      })

    const catalogListing = Effect.zipWith(registry.platforms, registry.degraded, (platforms, degraded) =>
      platforms.map((p) => ({ ...p, degradedReason: degraded.get(p.key) ?? null })))

    /**
     * A user's connections, read together with those of the users asked about at the same
     * time: under load, one statement serves many status requests.
     */
    const connectionsOf = yield* makeBatcher(
      (userIds: ReadonlyArray<string>) =>
        Effect.map(connections.findByUsers(userIds), (rows) => {
          const byUser = new Map<string, Array<Connection>>()
          for (const row of rows) {
            const list = byUser.get(row.userId)
            if (list === undefined) byUser.set(row.userId, [row])
            else list.push(row)
          }
          return (userId: string): ReadonlyArray<Connection> => byUser.get(userId) ?? []
        }),
      // While the database stalls, every worker is stuck on a statement: a request queued behind
      // them is failed with theirs, rather than waiting for them to fail before its own even starts.
      { workers: 4, maxBatch: 100, failsWaiting: (error) => error._tag === "DatabaseUnavailable" }
    )
    const statuses = (userId: string) =>
      Effect.gen(function*() {
        const [platforms, rows, t] = yield* Effect.all([catalogListing, connectionsOf.lookup(userId), now])
        return platforms.map((p) => platformStatus(p, rows.filter((r) => r.platform === p.key), t, cipher.knows))
      })

    const status = (userId: string, platform: string) =>
      Effect.gen(function*() {
        yield* registry.definition(platform)
        const [platforms, all, t] = yield* Effect.all([catalogListing, connectionsOf.lookup(userId), now])
        const rows = all.filter((r) => r.platform === platform)
        const listing = platforms.find((p) => p.key === platform)
        return platformStatus(listing ?? { key: platform, displayName: platform, configured: false }, rows, t, cipher.knows)
      })

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

    const disconnect = (userId: string, platform: string) =>
      Effect.gen(function*() {
        const definition = yield* registry.definition(platform)
        const rows = (yield* connections.findByUserAndPlatform(userId, platform)).filter((r) => r.status !== "disconnected")
        if (rows.length === 0) return yield* new NotConnected({ platform })
        let revoked = false
        if (definition.revocation) {
          const provider = yield* Effect.option(registry.get(platform))
          for (const row of rows) {
            const tokens = yield* Effect.option(connections.tokens(row))
            if (Option.isNone(provider) || Option.isNone(tokens)) continue
            // Revoking the refresh token revokes the grant; a failure must not keep the user connected here.
            const token = Option.getOrElse(tokens.value.refreshToken, () => tokens.value.accessToken)
            const done = yield* Effect.either(provider.value.revoke(token))
            revoked = Either.isRight(done) || revoked
            if (Either.isLeft(done)) {
              yield* Effect.logWarning("revocation failed; disconnected locally").pipe(Effect.annotateLogs({ platform, error: done.left._tag }))
            }
          }
        }
        const t = yield* now
        const gone = yield* connections.disconnect(userId, platform, t)
        for (const row of gone) {
          yield* events.append({ connectionId: row.id, userId, platform, kind: "disconnected", detail: { revoked } }, t)
        }
        yield* changes.publish(userId, platform)
        return { disconnected: gone.length, revoked }
      })

    /** Confirms a pending grant for the user who completed its flow (see Grants.confirm), and gives the platform's status. */
    const confirm = (userId: string, platform: string, confirmation: string) =>
      Effect.zipRight(grants.confirm(userId, platform, confirmation), status(userId, platform))

    return { authorize, completeCallback, confirm, statuses, status, accessToken, refresh, disconnect } as const
  })
}) {}
