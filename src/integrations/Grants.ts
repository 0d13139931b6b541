import { createHash, randomBytes } from "node:crypto"
import * as SqlClient from "@effect/sql/SqlClient"
import { Clock, Effect, Fiber, Metric, Option, Redacted } from "effect"
import { ConnectionRepository } from "../db/ConnectionRepository.js"
import type { NewConnection } from "../db/connectionWrites.js"
import { inTransaction } from "../db/Database.js"
import { EventRepository } from "../db/EventRepository.js"
import { type PendingGrant, PendingGrantRepository } from "../db/PendingGrantRepository.js"
import type { Connection, ConnectionIdentity, IssuedTokens } from "../domain/Connection.js"
import { ConfirmationRefused, type DatabaseUnavailable, InvalidConfirmation } from "../domain/errors.js"
import { withTags } from "../observability/labels.js"
import { connectionEstablishment } from "../observability/metrics.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { StatusChanges, StatusChangesLive } from "../status/StatusChanges.js"
import { retryingStore } from "./refreshPolicy.js"

/** The confirmation code's SHA-256: only the hash is stored. */
export const hashConfirmation = (code: string) => new Uint8Array(createHash("sha256").update(code, "utf8").digest())

/** Pending grants confirmed or revoked per statement of the cleanup. */
const EXPIRED_BATCH = 100

/** Why a grant is revoked, for the log line: never a token. */
type RevokeReason = "not_stored" | "confirmation_refused" | "confirmation_expired"

const revokeMessages: Record<RevokeReason, string> = {
  not_stored: "the grant could not be stored",
  confirmation_refused: "the grant was confirmed for another user than the one its flow was started for",
  confirmation_expired: "the grant was not confirmed in time"
}

/**
 * What becomes of a grant a platform issued at a callback: stored as a connection at once, or,
 * with OAUTH_CONFIRMATION=required, held as a pending grant until the application's back end
 * confirms it for the user who completed the flow (a state alone says for whom the flow was
 * started, not who consented: an authorisation URL forwarded to a victim would otherwise
 * connect the victim's account to the sender's user). A grant that cannot be stored, is
 * refused, or expires unconfirmed is revoked at the platform where the platform allows it.
 */
export class Grants extends Effect.Service<Grants>()("Integrations/Grants", {
  dependencies: [ProviderRegistry.Default, ConnectionRepository.Default, PendingGrantRepository.Default, EventRepository.Default, StatusChangesLive],
  scoped: Effect.gen(function*() {
    const registry = yield* ProviderRegistry
    const connections = yield* ConnectionRepository
    const pending = yield* PendingGrantRepository
    const events = yield* EventRepository
    const changes = yield* StatusChanges
    const sql = yield* SqlClient.SqlClient
    const scope = yield* Effect.scope
    const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

    /** Revokes a grant (its refresh token, which revokes the whole grant, else its access token), and says so. */
    const revoke = (platform: string, tokens: { readonly accessToken: Redacted.Redacted<string>; readonly refreshToken: Option.Option<Redacted.Redacted<string>> }, reason: RevokeReason) =>
      Effect.gen(function*() {
        const log = Effect.annotateLogs({ platform, reason })
        const provider = yield* Effect.option(registry.get(platform))
        if (Option.isNone(provider) || !provider.value.definition.revocation) {
          yield* Effect.logError(`${revokeMessages[reason]}, and the platform cannot revoke it: it stays live there until it expires`).pipe(log)
          return false
        }
        return yield* provider.value.revoke(Option.getOrElse(tokens.refreshToken, () => tokens.accessToken)).pipe(
          Effect.matchEffect({
            onSuccess: () => Effect.as(Effect.logWarning(`${revokeMessages[reason]}, and was revoked at the platform`).pipe(log), true),
            onFailure: (e) =>
              Effect.as(Effect.logError(`${revokeMessages[reason]}, and revoking it at the platform failed`).pipe(log, Effect.annotateLogs({ error: e._tag })), false)
          })
        )
      })

    /**
     * Stores with `store`, retrying briefly if the database blinked; when it still cannot, the
     * grant is revoked: the code is spent and the user is told to try again later
     * (service_unavailable), so a live grant left behind would be held by nobody. Not cut short
     * by a browser that goes away meanwhile: it runs in a fiber of this service's scope, which
     * the caller waits for uninterruptibly (the retries and the platform's budget bound the wait).
     */
    const storeOrRevoke = <A>(platform: string, tokens: IssuedTokens, store: Effect.Effect<A, DatabaseUnavailable>) => {
      const run = retryingStore(store).pipe(Effect.tapError(() => revoke(platform, tokens, "not_stored")))
      return Effect.uninterruptible(Effect.flatMap(Effect.forkIn(Effect.interruptible(run), scope), Fiber.join))
    }

    /** Stores the connection with its `connected` event, and announces it. */
    const connectNow = (input: NewConnection, t: Date) =>
      Effect.gen(function*() {
        const connection = yield* connections.upsert(input, t)
        yield* events.append({
          connectionId: connection.id,
          userId: connection.userId,
          platform: connection.platform,
          kind: "connected",
          detail: { account_id: connection.accountId, scope: connection.scope }
        }, t)
        return connection
      }).pipe((effect) => inTransaction(sql, effect))

    /** What follows a stored connection: the metric, the announcement, the log line. */
    const connected = (connection: Connection, flowStartedAt: Date, t: Date) =>
      Effect.gen(function*() {
        yield* Metric.update(withTags(connectionEstablishment, { platform: connection.platform }), (t.getTime() - flowStartedAt.getTime()) / 1000)
        yield* changes.publish(connection.userId, connection.platform)
        yield* Effect.logInfo("connected").pipe(Effect.annotateLogs({ platform: connection.platform, account_id: connection.accountId }))
      })

    /** A taken grant whose tokens could be opened, or the connection it would be lost to. */
    const openedOrDropped = (platform: string, grant: Option.Option<PendingGrant>) =>
      Option.isSome(grant)
        ? Effect.succeed(grant.value)
        : Effect.zipRight(
          Effect.logError("a pending grant's tokens cannot be opened (its key is not configured): it was dropped, and stays live at the platform until it expires").pipe(
            Effect.annotateLogs({ platform })
          ),
          Effect.fail(new InvalidConfirmation({ platform, reason: "unknown", message: "No grant waits for this confirmation code" }))
        )

    return {
      /** Stores a grant as the state's user's connection at once (OAUTH_CONFIRMATION=off). */
      connect: (input: NewConnection, flowStartedAt: Date) =>
        Effect.gen(function*() {
          const t = yield* now
          const connection = yield* storeOrRevoke(input.platform, input.tokens, connectNow(input, t))
          yield* connected(connection, flowStartedAt, t)
          return connection
        }),

      /**
       * Holds a grant until it is confirmed, until `confirmBy`; gives the one-time code the
       * browser carries back to the application.
       */
      hold: (grant: ConnectionIdentity & { readonly tokens: IssuedTokens; readonly providerData: Record<string, unknown> }, flowStartedAt: Date, confirmBy: Date) =>
        Effect.gen(function*() {
          const t = yield* now
          const code = randomBytes(32).toString("base64url")
          yield* storeOrRevoke(grant.platform, grant.tokens, pending.create({ ...grant, confirmationHash: hashConfirmation(code), flowStartedAt, confirmBy }, t))
          yield* Effect.logInfo("authorised; waiting for the application's confirmation").pipe(Effect.annotateLogs({ platform: grant.platform }))
          return Redacted.make(code)
        }),

      /**
       * Confirms the grant of `code` for `userId`: when its flow was started for that user,
       * its connection is stored (replacing the one it re-authorises) in the same transaction
       * that deletes the pending grant; otherwise it is deleted, revoked at the platform and
       * the refusal recorded. A code works once, and only until it expires.
       */
      confirm: (userId: string, platform: string, code: string) =>
        Effect.gen(function*() {
          yield* registry.definition(platform)
          const t = yield* now
          const outcome = yield* inTransaction(sql, Effect.gen(function*() {
            const locked = yield* pending.lock(hashConfirmation(code), platform)
            if (Option.isNone(locked)) return { _tag: "unknown" } as const
            yield* pending.remove(locked.value.id)
            const grant = yield* openedOrDropped(platform, locked.value.grant)
            if (grant.confirmBy.getTime() <= t.getTime()) return { _tag: "expired", grant } as const
            if (grant.userId !== userId) {
              yield* events.append({
                connectionId: null,
                userId: grant.userId,
                platform,
                kind: "confirmation_refused",
                detail: { account_id: grant.accountId, confirmed_for: userId }
              }, t)
              return { _tag: "refused", grant } as const
            }
            const connection = yield* connectNow({
              userId: grant.userId,
              platform: grant.platform,
              accountId: grant.accountId,
              providerData: grant.providerData,
              tokens: grant.tokens
            }, t)
            return { _tag: "confirmed", connection, grant } as const
          }))
          switch (outcome._tag) {
            case "unknown":
              return yield* new InvalidConfirmation({ platform, reason: "unknown", message: "No grant waits for this confirmation code: it is unknown, used, or for another platform" })
            case "expired":
              yield* revoke(platform, outcome.grant.tokens, "confirmation_expired")
              return yield* new InvalidConfirmation({ platform, reason: "expired", message: "The confirmation code expired; the user must connect again" })
            case "refused":
              yield* revoke(platform, outcome.grant.tokens, "confirmation_refused")
              return yield* new ConfirmationRefused({
                platform,
                message: "This authorisation was started for another user: it was revoked, and nothing was connected"
              })
            case "confirmed":
              yield* connected(outcome.connection, outcome.grant.flowStartedAt, t)
              return outcome.connection
          }
        }),

      /** Deletes the pending grants past their time and revokes them; gives how many were deleted. */
      purgeExpired: Effect.gen(function*() {
        let deleted = 0
        for (;;) {
          const t = yield* now
          const { grants, taken } = yield* pending.takeExpired(t, EXPIRED_BATCH)
          deleted += taken
          yield* Effect.forEach(grants, (grant) => revoke(grant.platform, grant.tokens, "confirmation_expired"), { discard: true, concurrency: 4 })
          if (taken < EXPIRED_BATCH) return deleted
        }
      })
    } as const
  })
}) {}
