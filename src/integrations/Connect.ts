import { Clock, Duration, Effect, Either, Option, Redacted } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { stateContext, TokenCipher } from "../crypto/TokenCipher.js"
import { ConnectionRepository } from "../db/ConnectionRepository.js"
import { EventRepository } from "../db/EventRepository.js"
import { type AuthMode, StateRepository } from "../db/StateRepository.js"
import type { Connection } from "../domain/Connection.js"
import {
  AuthorizationDenied,
  InvalidCallback,
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
import { originPolicyOf, returnToOrFail } from "../oauth/redirectPolicy.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { StatusChangesLive, StatusChanges } from "../status/StatusChanges.js"
import { Statuses } from "../status/Statuses.js"
import { Grants } from "./Grants.js"

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



/**
 * Connecting an account and disconnecting it, on any platform: the authorisation URL (state
 * and PKCE kept server-side), the callback (code exchange, account lookup, the grant stored
 * or held for confirmation), the confirmation, and the disconnection (revoked at the
 * platform where it can be). Platforms differ only in their definitions.
 */
export class Connect extends Effect.Service<Connect>()("Integrations/Connect", {
  dependencies: [
    ProviderRegistry.Default,
    Grants.Default,
    Statuses.Default,
    ConnectionRepository.Default,
    StateRepository.Default,
    EventRepository.Default,
    TokenCipher.Default,
    StatusChangesLive
  ],
  effect: Effect.gen(function*() {
    const registry = yield* ProviderRegistry
    const grants = yield* Grants
    const statuses = yield* Statuses
    const connections = yield* ConnectionRepository
    const states = yield* StateRepository
    const events = yield* EventRepository
    const cipher = yield* TokenCipher
    const changes = yield* StatusChanges
    const app = yield* AppConfig
    const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))
    const policy = originPolicyOf(app)

    const authorize = (userId: string, platform: string, options: AuthorizeOptions = {}) =>
      Effect.gen(function*() {
        const provider = yield* registry.get(platform)
        const returnTo = yield* returnToOrFail(options.returnTo, policy)
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
      Effect.zipRight(grants.confirm(userId, platform, confirmation), statuses.status(userId, platform))

    return { authorize, completeCallback, confirm, disconnect } as const
  })
}) {}
