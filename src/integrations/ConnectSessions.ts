import { createHash, randomBytes, randomUUID } from "node:crypto"
import { Clock, Duration, Effect, Option, Redacted } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { ConnectSessionRepository, type StoredSession } from "../db/ConnectSessionRepository.js"
import { NotInSession, SessionInvalid } from "../domain/errors.js"
import { originPolicyOf, returnToOrFail } from "../oauth/redirectPolicy.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"

export interface NewSession {
  readonly userId: string
  /** Default: every configured platform. */
  readonly platforms?: ReadonlyArray<string> | undefined
  readonly returnTo?: string | undefined
  readonly allowDisconnect?: boolean | undefined
}

export interface CreatedSession {
  /** The page's URL with the session's secret in its fragment (never in a path or query). */
  readonly connectUrl: Redacted.Redacted<string>
  readonly session: StoredSession
}

/** A session secret: 256 random bits, base64url. */
const SECRET = /^[A-Za-z0-9_-]{43}$/

const hashSecret = (secret: string) => createHash("sha256").update(secret, "utf8").digest()

/**
 * Connect sessions: a user's pass to the hosted connect page, limited to some platforms and to
 * CONNECT_SESSION_TTL. The secret is handed out once, in the page URL's fragment, and stored
 * only as its SHA-256.
 */
export class ConnectSessions extends Effect.Service<ConnectSessions>()("Integrations/ConnectSessions", {
  dependencies: [ConnectSessionRepository.Default, ProviderRegistry.Default],
  effect: Effect.gen(function*() {
    const sessions = yield* ConnectSessionRepository
    const registry = yield* ProviderRegistry
    const app = yield* AppConfig
    const policy = originPolicyOf(app)

    const platformsOf = (asked: ReadonlyArray<string> | undefined) =>
      Effect.gen(function*() {
        if (asked === undefined) return (yield* registry.platforms).filter((p) => p.configured).map((p) => p.key)
        const unique = [...new Set(asked)]
        // Unknown or not configured: the error of the first such, naming its variables.
        yield* Effect.forEach(unique, (key) => registry.get(key), { discard: true })
        return unique
      })

    const create = (input: NewSession) =>
      Effect.gen(function*() {
        const platforms = yield* platformsOf(input.platforms)
        const returnTo = yield* returnToOrFail(input.returnTo, policy)
        const t = new Date(yield* Clock.currentTimeMillis)
        const secret = randomBytes(32).toString("base64url")
        const session: StoredSession = {
          id: randomUUID(),
          userId: input.userId,
          platforms,
          returnTo,
          allowDisconnect: input.allowDisconnect ?? false,
          expiresAt: new Date(t.getTime() + Duration.toMillis(app.connect.sessionTtl)),
          createdAt: t
        }
        yield* sessions.create(session, hashSecret(secret))
        const url = new URL(app.connect.pageUrl)
        url.hash = `session=${secret}`
        return { connectUrl: Redacted.make(url.toString()), session } satisfies CreatedSession
      })

    /** The live session of `secret`: SessionInvalid for anything else, without saying more than why. */
    const open = (secret: string | undefined) =>
      Effect.gen(function*() {
        if (secret === undefined || secret.trim() === "") {
          return yield* new SessionInvalid({ reason: "missing", message: "This page needs a connect session: ask the application for a new link" })
        }
        const found = SECRET.test(secret) ? yield* sessions.findBySecretHash(hashSecret(secret)) : Option.none()
        if (Option.isNone(found)) {
          return yield* new SessionInvalid({ reason: "unknown", message: "This connect link is not valid: ask the application for a new one" })
        }
        if (found.value.expiresAt.getTime() <= (yield* Clock.currentTimeMillis)) {
          return yield* new SessionInvalid({ reason: "expired", message: "This connect link has expired: ask the application for a new one" })
        }
        return found.value
      })

    /** `platform`, if the session offers it. */
    const offered = (session: StoredSession, platform: string) =>
      session.platforms.includes(platform)
        ? Effect.succeed(platform)
        : Effect.fail(new NotInSession({ platform, message: `this connect session does not offer ${platform}` }))

    const mayDisconnect = (session: StoredSession, platform: string) =>
      Effect.flatMap(offered(session, platform), () =>
        session.allowDisconnect
          ? Effect.void
          : Effect.fail(new NotInSession({ platform, message: "this connect session does not allow disconnecting" })))

    return { create, open, offered, mayDisconnect } as const
  })
}) {}
