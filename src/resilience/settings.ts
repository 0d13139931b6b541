import { Config, Duration, Option } from "effect"
import * as Rules from "../config/rules.js"
import type { BreakerSettings } from "./CircuitBreaker.js"
import type { RetrySettings } from "./retry.js"

export interface ResilienceSettings {
  readonly retry: RetrySettings
  readonly breaker: BreakerSettings
}

/**
 * `<PREFIX>_NAME` when set, else `NAME`, else the default. Both are read, so that a bad value
 * in either is reported alone (an orElse would also report the other branch as missing).
 */
const prefixed = <A>(prefix: string, name: string, parse: Rules.Parser<A>, fallback: A) =>
  Config.all([
    Rules.checked(`${prefix}_${name}`, parse).pipe(Config.option),
    Rules.checked(name, parse).pipe(Config.withDefault(fallback))
  ]).pipe(Config.map(([own, shared]) => Option.getOrElse(own, () => shared)))

/**
 * Retry and circuit-breaker settings, each variable overridable under a prefix (a platform's:
 * `GSC_RETRY_MAX` over `RETRY_MAX`). The defaults are the original service's: 3 retries from
 * 1 s doubling, none started after 60 s; open after 5 consecutive failures for 60 s; 3
 * successes close it.
 */
export const readResilience = (prefix: string): Config.Config<ResilienceSettings> =>
  Config.all({
    retry: Config.all({
      retries: prefixed(prefix, "RETRY_MAX", Rules.integerIn(0, 20), 3),
      initialDelay: prefixed(prefix, "RETRY_INITIAL_DELAY", Rules.durationAtLeast("1 millis"), Duration.seconds(1)),
      factor: prefixed(prefix, "RETRY_FACTOR", Rules.numberIn(1, 10), 2),
      maxDelay: prefixed(prefix, "RETRY_MAX_DELAY", Rules.durationAtLeast("1 millis"), Duration.seconds(30)),
      jitter: prefixed(prefix, "RETRY_JITTER", Rules.parseBoolean, true),
      budget: prefixed(prefix, "RETRY_BUDGET", Rules.durationAtLeast(), Duration.seconds(60))
    }),
    breaker: Config.all({
      failureThreshold: prefixed(prefix, "BREAKER_FAILURE_THRESHOLD", Rules.integerIn(1, 1000), 5),
      recoveryTimeout: prefixed(prefix, "BREAKER_RECOVERY_TIMEOUT", Rules.durationAtLeast("1 millis"), Duration.seconds(60)),
      successThreshold: prefixed(prefix, "BREAKER_SUCCESS_THRESHOLD", Rules.integerIn(1, 1000), 3),
      halfOpenMaxCalls: prefixed(prefix, "BREAKER_HALF_OPEN_MAX_CALLS", Rules.integerIn(1, 1000), 1)
    })
  })

/** The longest one operation can take: no retry starts after the budget, and the last attempt may then take its timeout. */
export const operationBudget = (resilience: ResilienceSettings, timeout: Duration.Duration) => Duration.sum(resilience.retry.budget, timeout)

/**
 * A refresh holds its connection's lease while it calls the platform; if it could outlast
 * the lease, another process could take the row and present the same refresh token.
 */
export const checkLease = (prefix: string, resilience: ResilienceSettings, timeout: Duration.Duration, leaseDuration: Duration.Duration) => {
  if (Duration.lessThan(operationBudget(resilience, timeout), leaseDuration)) return undefined
  return `${prefix}_RETRY_BUDGET or RETRY_BUDGET: ${Duration.format(resilience.retry.budget)} plus the ${Duration.format(timeout)} request timeout ` +
    `must be shorter than LEASE_DURATION (${Duration.format(leaseDuration)}), or a refresh may outlive its lease`
}
