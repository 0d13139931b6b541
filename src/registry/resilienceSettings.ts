import { Config, Duration, Option } from "effect"
import * as Rules from "../config/rules.js"
import { variablePrefix } from "../platforms/settings.js"
import type { ResilienceSettings } from "./resilient.js"

/**
 * `<KEY>_NAME` when set, else `NAME`, else the default. Both are read, so that a bad value
 * in either is reported alone (an orElse would also report the other branch as missing).
 */
const perPlatform = <A>(prefix: string, name: string, parse: Rules.Parser<A>, fallback: A) =>
  Config.all([
    Rules.checked(`${prefix}_${name}`, parse).pipe(Config.option),
    Rules.checked(name, parse).pipe(Config.withDefault(fallback))
  ]).pipe(Config.map(([own, shared]) => Option.getOrElse(own, () => shared)))

/**
 * Retry and circuit-breaker settings of a platform, each variable overridable per platform
 * (`GSC_RETRY_MAX` over `RETRY_MAX`). The defaults are the original service's: 3 retries
 * from 1 s doubling, none started after 60 s; open after 5 consecutive failures for 60 s;
 * 3 successes close it.
 */
export const readResilience = (key: string): Config.Config<ResilienceSettings> => {
  const p = variablePrefix(key)
  return Config.all({
    retry: Config.all({
      retries: perPlatform(p, "RETRY_MAX", Rules.integerIn(0, 20), 3),
      initialDelay: perPlatform(p, "RETRY_INITIAL_DELAY", Rules.durationAtLeast("1 millis"), Duration.seconds(1)),
      factor: perPlatform(p, "RETRY_FACTOR", Rules.numberIn(1, 10), 2),
      maxDelay: perPlatform(p, "RETRY_MAX_DELAY", Rules.durationAtLeast("1 millis"), Duration.seconds(30)),
      jitter: perPlatform(p, "RETRY_JITTER", Rules.parseBoolean, true),
      budget: perPlatform(p, "RETRY_BUDGET", Rules.durationAtLeast(), Duration.seconds(60))
    }),
    breaker: Config.all({
      failureThreshold: perPlatform(p, "BREAKER_FAILURE_THRESHOLD", Rules.integerIn(1, 1000), 5),
      recoveryTimeout: perPlatform(p, "BREAKER_RECOVERY_TIMEOUT", Rules.durationAtLeast("1 millis"), Duration.seconds(60)),
      successThreshold: perPlatform(p, "BREAKER_SUCCESS_THRESHOLD", Rules.integerIn(1, 1000), 3),
      halfOpenMaxCalls: perPlatform(p, "BREAKER_HALF_OPEN_MAX_CALLS", Rules.integerIn(1, 1000), 1)
    })
  })
}

/** The longest one operation can take: no retry starts after the budget, and the last attempt may then take its timeout. */
export const operationBudget = (resilience: ResilienceSettings, timeout: Duration.Duration) => Duration.sum(resilience.retry.budget, timeout)

/**
 * A refresh holds its connection's lease while it calls the platform; if it could outlast
 * the lease, another process could take the row and present the same refresh token.
 */
export const checkLease = (key: string, resilience: ResilienceSettings, timeout: Duration.Duration, leaseDuration: Duration.Duration) => {
  if (Duration.lessThan(operationBudget(resilience, timeout), leaseDuration)) return undefined
  const p = variablePrefix(key)
  return `${p}_RETRY_BUDGET or RETRY_BUDGET: ${Duration.format(resilience.retry.budget)} plus the ${Duration.format(timeout)} request timeout ` +
    `must be shorter than LEASE_DURATION (${Duration.format(leaseDuration)}), or a refresh may outlive its lease`
}
