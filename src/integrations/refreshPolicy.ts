import { Data, Duration, Effect, Schedule } from "effect"
import type {
  ConnectionUnreadable,
  DatabaseUnavailable,
  NotConnected,
  PlatformNotConfigured,
  ProviderError,
  RefreshInProgress,
  UnknownPlatform
} from "../domain/errors.js"

/** After a transient failure the next attempt waits 1 min, doubling per failure, at most 1 h. */
export const nextAttemptDelay = (failures: number): Duration.Duration =>
  Duration.min(Duration.times(Duration.minutes(1), 2 ** Math.min(failures, 10)), Duration.hours(1))

/**
 * When the monitor tries a connection again after a transient failure: after the backoff,
 * or after the platform's Retry-After when it asked for longer, that capped at
 * RETRY_AFTER_MAX (a platform's 864000 s would park the connection for ten days).
 *
 * While the access token is still valid, never later than one MONITOR_INTERVAL before it
 * expires: a pass then still tries the connection before its token runs out, whatever the
 * platform asked. When that point has already passed (the token expires within one
 * interval, or has expired), the rule above applies unchanged rather than "at once": no
 * pass can be counted on to come before the expiry any more, the token endpoint refreshes
 * an expiring token on demand whatever next_attempt_at says, and trying at once would send
 * a platform that just refused, or asked us to slow down, a request at every pass.
 */
export const nextAttemptAt = (failure: {
  readonly now: Date
  /** Failures in a row before this one. */
  readonly failures: number
  readonly retryAfterMs: number | undefined
  readonly expiresAt: Date | null
  readonly retryAfterMax: Duration.Duration
  readonly monitorInterval: Duration.Duration
}): Date => {
  const asked = Math.min(failure.retryAfterMs ?? 0, Duration.toMillis(failure.retryAfterMax))
  const wanted = failure.now.getTime() + Math.max(Duration.toMillis(nextAttemptDelay(failure.failures)), asked)
  const lastUseful = failure.expiresAt === null ? null : failure.expiresAt.getTime() - Duration.toMillis(failure.monitorInterval)
  return new Date(lastUseful !== null && lastUseful > failure.now.getTime() ? Math.min(wanted, lastUseful) : wanted)
}

/**
 * A claimed row whose lease has less time left than the platform's longest operation: calling
 * the platform now could outlive the lease and race whoever takes the row next, so it is left
 * for a later claim.
 */
export class LeaseTooShort extends Data.TaggedError("LeaseTooShort")<{ readonly platform: string }> {}


/**
 * Every way a refresh (or a validation) can end without a stored new token: the platform's
 * answer, or why the platform was not called, or why the answer could not be stored.
 */
export type RefreshFailure =
  | ProviderError
  | NotConnected
  | RefreshInProgress
  | LeaseTooShort
  | ConnectionUnreadable
  | DatabaseUnavailable
  | PlatformNotConfigured
  | UnknownPlatform

/** A store that failed because the database blinked is tried again, briefly (about 1.5 s in all). */
const STORE_RETRY = Schedule.exponential(Duration.millis(100)).pipe(Schedule.intersect(Schedule.recurs(4)))

/** A write that failed because the database blinked, tried again on STORE_RETRY. */
export const retryingStore = <A>(write: Effect.Effect<A, DatabaseUnavailable>) =>
  Effect.retry(write, { schedule: STORE_RETRY, while: (e) => e._tag === "DatabaseUnavailable" })

