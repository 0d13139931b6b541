import { Duration, Option } from "effect"

/**
 * When a webhook delivery is attempted again after a failed attempt (anything but a 2xx, a
 * timeout, a refused connection): at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
 * 10 h, about a day and a half in all; after the last, the delivery is failed. Each wait is
 * jittered by up to a fifth either way, so that deliveries failed together by an outage do not
 * all come back in the same second.
 */
export const DELIVERY_WAITS: ReadonlyArray<Duration.Duration> = [
  Duration.zero,
  Duration.seconds(5),
  Duration.minutes(5),
  Duration.minutes(30),
  Duration.hours(2),
  Duration.hours(5),
  Duration.hours(10),
  Duration.hours(10)
]

/**
 * The next attempt after `failedAttempts` failures (1 after the first), none when the delivery
 * is to be failed; `random` is a number in [0, 1) (Effect's Random in the worker).
 */
export const nextDeliveryAttempt = (failedAttempts: number, now: Date, random: number): Option.Option<Date> => {
  const wait = DELIVERY_WAITS[failedAttempts - 1]
  if (wait === undefined) return Option.none()
  const jitter = 1 + (random * 2 - 1) / 5
  return Option.some(new Date(now.getTime() + Math.round(Duration.toMillis(wait) * jitter)))
}
