import { Config, ConfigError, Duration } from "effect"
import * as Rules from "../config/rules.js"
import { variablePrefix } from "../platforms/settings.js"
import type { ResilienceSettings } from "./resilient.js"

/** `<KEY>_NAME` when set, else `NAME`, else the default. */
const perPlatform = <A>(prefix: string, name: string, parse: Rules.Parser<A>, fallback: A) =>
  Rules.checked(`${prefix}_${name}`, parse).pipe(
    Config.orElseIf({ if: ConfigError.isMissingDataOnly, orElse: () => Rules.checked(name, parse) }),
    Config.withDefault(fallback)
  )

/**
 * Retry and circuit-breaker settings of a platform, each variable overridable per platform
 * (`GSC_RETRY_MAX` over `RETRY_MAX`). The defaults are the original service's: 3 retries
 * from 1 s doubling; open after 5 consecutive failures for 60 s; 3 successes close it.
 */
export const readResilience = (key: string): Config.Config<ResilienceSettings> => {
  const p = variablePrefix(key)
  return Config.all({
    retry: Config.all({
      retries: perPlatform(p, "RETRY_MAX", Rules.integerIn(0, 20), 3),
      initialDelay: perPlatform(p, "RETRY_INITIAL_DELAY", Rules.durationAtLeast("1 millis"), Duration.seconds(1)),
      factor: perPlatform(p, "RETRY_FACTOR", Rules.numberIn(1, 10), 2),
      maxDelay: perPlatform(p, "RETRY_MAX_DELAY", Rules.durationAtLeast("1 millis"), Duration.seconds(30)),
      jitter: perPlatform(p, "RETRY_JITTER", Rules.parseBoolean, true)
    }),
    breaker: Config.all({
      failureThreshold: perPlatform(p, "BREAKER_FAILURE_THRESHOLD", Rules.integerIn(1, 1000), 5),
      recoveryTimeout: perPlatform(p, "BREAKER_RECOVERY_TIMEOUT", Rules.durationAtLeast("1 millis"), Duration.seconds(60)),
      successThreshold: perPlatform(p, "BREAKER_SUCCESS_THRESHOLD", Rules.integerIn(1, 1000), 3),
      halfOpenMaxCalls: perPlatform(p, "BREAKER_HALF_OPEN_MAX_CALLS", Rules.integerIn(1, 1000), 1)
    })
  })
}
