import { Clock, Duration, Effect, type Exit } from "effect"
import { type CircuitOpen, ProviderUnavailable } from "../domain/errors.js"
import * as CircuitBreaker from "./CircuitBreaker.js"
import { withRetry } from "./retry.js"
import { operationBudget, type ResilienceSettings } from "./settings.js"

/**
 * The resilience of one platform's calls: its circuit breaker, its retries and the budget of
 * an operation. An operation (a refresh, say) may make several HTTP requests; the breaker
 * observes each request, and the retries and the budget are the operation's.
 */
export interface ResiliencePolicy {
  readonly breaker: CircuitBreaker.CircuitBreaker
  /** The longest one operation can take, retries included: RETRY_BUDGET plus the last attempt's request timeout. */
  readonly budget: Duration.Duration
  /**
   * Runs an operation, `attempt` given the time (ms on the Clock) by which its requests must
   * end; with `retry`, its transient failures are retried within the budget.
   */
  readonly operation: <A, E, R>(attempt: (deadline: number) => Effect.Effect<A, E, R>, options: { readonly retry: boolean }) => Effect.Effect<A, E, R>
  /**
   * One request of an operation, as one breaker observation, cut short at `deadline`.
   * `settled` is told how a request let through ended (see CircuitBreaker.protect).
   */
  readonly request: <A, E, R>(
    request: Effect.Effect<A, E, R>,
    deadline: number,
    settled?: (exit: Exit.Exit<A, E>, elapsedMs: number) => Effect.Effect<void>
  ) => Effect.Effect<A, E | CircuitOpen | ProviderUnavailable, R>
}

/** The policy of the platform `name`, whose requests each have `requestTimeout`; its breaker starts closed. */
export const make = (name: string, settings: ResilienceSettings, requestTimeout: Duration.Duration): Effect.Effect<ResiliencePolicy> =>
  Effect.map(CircuitBreaker.make(name, settings.breaker), (breaker) => {
    const budget = operationBudget(settings, requestTimeout)
    const budgetMs = Duration.toMillis(budget)
    const timeoutMs = Duration.toMillis(requestTimeout)
    return {
      breaker,
      budget,
      operation: (attempt, { retry }) =>
        Effect.flatMap(Clock.currentTimeMillis, (start) => {
          const run = attempt(start + budgetMs)
          return retry ? withRetry(run, settings.retry, breaker, start) : run
        }),
      request: (request, deadline, settled) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const observed = breaker.protect(request, settled)
          // However many requests an operation makes, none runs past its budget; a request
          // that would end before the budget does is bounded by its own timeout alone.
          return deadline - now >= timeoutMs
            ? observed
            : Effect.timeoutFail(observed, { duration: Math.max(0, deadline - now), onTimeout: () => new ProviderUnavailable({ platform: name, reason: "timeout" }) })
        })
    }
  })
