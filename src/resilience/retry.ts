import { Clock, Duration, Effect, Either, Schedule, ScheduleDecision, ScheduleIntervals } from "effect"
import { isTransient, RateLimited } from "../domain/errors.js"
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
  /** No retry starts later than this after the first attempt did. */
  readonly budget: Duration.Duration
}

/** The original service's numbers: 3 retries from 1 s, doubling; none started after 60 s. */
export const defaultRetrySettings: RetrySettings = {
  retries: 3,
  initialDelay: Duration.seconds(1),
  factor: 2,
  maxDelay: Duration.seconds(30),
  jitter: true,
  budget: Duration.seconds(60)
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
 * Runs `operation`, retrying its transient failures on the schedule. The breaker observes
 * each HTTP request inside the operation; here it only ends the retries: none is made while
 * calls fail fast, and a sleep ends the moment the breaker opens (the next attempt then
 * fails fast with CircuitOpen). A retry that would start past the budget is not made: the
 * operation fails with its last error (a RateLimited keeps its Retry-After).
 *
 * The schedule is stepped here rather than given to Effect.retry because Effect.retry's
 * sleeps cannot be cut short.
 */
export const withRetry = <A, E, R>(
  operation: Effect.Effect<A, E, R>,
  settings: RetrySettings,
  breaker: Pick<CircuitBreaker, "failsFast" | "opened">,
  /** When the first attempt started, if the caller has read the Clock already; else now. */
  startedAt?: number
): Effect.Effect<A, E, R> =>
  // The first attempt alone costs at most a clock read: the schedule is made only once it has failed.
  Effect.flatMap(startedAt === undefined ? Clock.currentTimeMillis : Effect.succeed(startedAt), (started) =>
    Effect.catchAll(operation, (first) =>
      Effect.gen(function*() {
        const schedule = honouringRetryAfter<E>(settings)
        const deadline = started + Duration.toMillis(settings.budget)
        let state: unknown = schedule.initial
        let error = first
        for (;;) {
          if (!isTransient(error) || (yield* breaker.failsFast)) return yield* Effect.fail(error)
          const now = yield* Clock.currentTimeMillis
          const [next, , decision] = yield* schedule.step(now, error, state)
          if (ScheduleDecision.isDone(decision)) return yield* Effect.fail(error)
          const wake = ScheduleIntervals.start(decision.intervals)
          if (wake > deadline) return yield* Effect.fail(error)
          state = next
          yield* Effect.raceFirst(Effect.sleep(Duration.millis(wake - now)), breaker.opened)
          const result = yield* Effect.either(operation)
          if (Either.isRight(result)) return result.right
          error = result.left
        }
      })))
