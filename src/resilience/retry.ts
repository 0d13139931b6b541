import { Duration, Effect, Schedule } from "effect"
import { type CircuitOpen, isTransient, RateLimited } from "../domain/errors.js"
import type { CircuitBreaker } from "./CircuitBreaker.js"

export interface RetrySettings {
  /** Retries after the first attempt. */
  readonly retries: number
  readonly initialDelay: Duration.Duration
  readonly factor: number
  /** No single delay is longer (a Retry-After may be, up to MAX_RETRY_AFTER). */
  readonly maxDelay: Duration.Duration
  /** Spread each delay over 0.8–1.2 of its nominal value. */
  readonly jitter: boolean
}

/** The original service's numbers: 3 retries from 1 s, doubling. */
export const defaultRetrySettings: RetrySettings = {
  retries: 3,
  initialDelay: Duration.seconds(1),
  factor: 2,
  maxDelay: Duration.seconds(30),
  jitter: true
}

/** A platform asking for a longer pause than this is not waited for. */
export const MAX_RETRY_AFTER = Duration.minutes(5)

/** initialDelay × factor^n, jittered when asked, each capped at maxDelay, `retries` times. */
export const retrySchedule = (settings: RetrySettings) => {
  const exponential = Schedule.exponential(settings.initialDelay, settings.factor)
  const spread = settings.jitter ? Schedule.jittered(exponential) : exponential
  return spread.pipe(
    Schedule.modifyDelay((_, delay) => Duration.min(delay, settings.maxDelay)),
    Schedule.intersect(Schedule.recurs(settings.retries))
  )
}

/** The schedule, fed the errors: a 429's Retry-After replaces a shorter delay. */
const honouringRetryAfter = <E>(settings: RetrySettings) =>
  Schedule.intersect(retrySchedule(settings), Schedule.identity<E>()).pipe(
    Schedule.modifyDelay(([, error], delay) =>
      error instanceof RateLimited && error.retryAfterMs !== undefined && error.retryAfterMs > Duration.toMillis(delay)
        ? Duration.min(Duration.millis(error.retryAfterMs), MAX_RETRY_AFTER)
        : delay
    )
  )

/**
 * Runs `attempt` through the breaker, retrying transient failures on the schedule. Each
 * attempt is one breaker observation; once the breaker is open the retries stop at once
 * (no sleeping through them); any other error is not retried.
 */
export const withRetry = <A, E, R>(attempt: Effect.Effect<A, E, R>, settings: RetrySettings, breaker: CircuitBreaker) =>
  breaker.protect(attempt).pipe(
    Effect.retry({
      schedule: honouringRetryAfter<E | CircuitOpen>(settings),
      while: (error) => !isTransient(error) ? false : Effect.map(breaker.health, (h) => h.state !== "open")
    })
  )

/** One attempt through the breaker, never retried: authorisation codes are single use. */
export const once = <A, E, R>(attempt: Effect.Effect<A, E, R>, breaker: CircuitBreaker) => breaker.protect(attempt)
