import { Cause, Clock, Deferred, Duration, Effect, Exit, Metric, Option, Ref } from "effect"
import { CircuitOpen, InvalidGrant, isTransient, ProviderUnavailable } from "../domain/errors.js"
import { withTags } from "../observability/labels.js"
import { breakerState, breakerTransitions } from "../observability/metrics.js"

export interface BreakerSettings {
  /** Consecutive transient failures that open the breaker. */
  readonly failureThreshold: number
  /** How long it stays open before a trial call is let through. */
  readonly recoveryTimeout: Duration.Duration
  /** Successful trials that close it again. */
  readonly successThreshold: number
  /** Trials admitted at once while half open. */
  readonly halfOpenMaxCalls: number
}

/** The original service's numbers. */
export const defaultBreakerSettings: BreakerSettings = {
  failureThreshold: 5,
  recoveryTimeout: Duration.seconds(60),
  successThreshold: 3,
  halfOpenMaxCalls: 1
}

export type BreakerState = "closed" | "open" | "half_open"

export interface BreakerHealth {
  readonly state: BreakerState
  /** Counted failures since the last success; while open, the run that opened it. */
  readonly consecutiveFailures: number
  readonly halfOpenSuccesses: number
  readonly openedCount: number
  /** The last transient failure (the kind that opens the breaker). */
  readonly lastFailureAt: Date | null
  readonly lastFailureKind: string | null
  /**
   * The last answer that was an error about the platform as a whole but does not open the
   * breaker (invalid_client, an unreadable answer): usually our configuration. A user's
   * invalid_grant is about that user's token and is not recorded.
   */
  readonly lastErrorAt: Date | null
  readonly lastErrorKind: string | null
  /** While open: milliseconds until a trial is admitted. */
  readonly retryAfterMs: number | null
}

/** The health of a breaker that has seen no call yet. */
export const idleHealth: BreakerHealth = {
  state: "closed",
  consecutiveFailures: 0,
  halfOpenSuccesses: 0,
  openedCount: 0,
  lastFailureAt: null,
  lastFailureKind: null,
  lastErrorAt: null,
  lastErrorKind: null,
  retryAfterMs: null
}

export interface CircuitBreaker {
  readonly name: string
  /**
   * Runs `effect` as one observation of the breaker, or fails at once with CircuitOpen.
   * `settled`, when given, is told how the call it let through ended and how long it took
   * (in milliseconds, on the Clock) once the breaker has counted it.
   */
  readonly protect: <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    settled?: (exit: Exit.Exit<A, E>, elapsedMs: number) => Effect.Effect<void>
  ) => Effect.Effect<A, E | CircuitOpen, R>
  readonly health: Effect.Effect<BreakerHealth>
  /** The state alone, cheaply. */
  readonly state: Effect.Effect<BreakerState>
  /** Whether a call made now would fail at once with CircuitOpen (open, or half open with every trial slot taken). */
  readonly failsFast: Effect.Effect<boolean>
  /** Completes as soon as calls fail fast: at once if they do now, else when the breaker next opens. */
  readonly opened: Effect.Effect<void>
}

type Phase =
  | { readonly _tag: "closed" }
  | { readonly _tag: "open"; readonly openedAt: number }
  | { readonly _tag: "half_open"; readonly inFlight: number; readonly successes: number }

interface State {
  readonly phase: Phase
  /** Bumped on every transition: an outcome only counts in the phase its call started in. */
  readonly generation: number
  readonly consecutiveFailures: number
  readonly openedCount: number
  readonly lastFailureAt: number | null
  readonly lastFailureKind: string | null
  readonly lastErrorAt: number | null
  readonly lastErrorKind: string | null
}

type Admission =
  | { readonly _tag: "run"; readonly generation: number; readonly trial: boolean }
  | { readonly _tag: "reject"; readonly retryAfterMs: number }

/** What a call's exit means to the breaker. */
type Outcome =
  | { readonly _tag: "success" }
  /** A transient failure: counted. */
  | { readonly _tag: "failure"; readonly kind: string }
  /** The platform answered, with an error that is not about one user: not counted, but shown. */
  | { readonly _tag: "error"; readonly kind: string }
  /** Interrupted, or a defect: frees a half-open slot, counts for nothing. */
  | { readonly _tag: "release" }

type Transition = readonly [from: BreakerState, to: BreakerState]

/** While half open and full, callers are told to come back in a second. */
const HALF_OPEN_RETRY_HINT_MS = 1000

const stateCode: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 }

/** "ProviderUnavailable:timeout", "InvalidClient:invalid_client", "RateLimited"... */
const kindOf = (error: unknown): string => {
  if (error instanceof ProviderUnavailable) return `ProviderUnavailable:${error.reason}`
  if (typeof error !== "object" || error === null || !("_tag" in error)) return "unknown"
  return "error" in error && typeof error.error === "string" ? `${String(error._tag)}:${error.error}` : String(error._tag)
}

/** A failure combined with a defect is still that failure: Cause.failureOption finds it in any Cause. */
const classify = <A, E>(exit: Exit.Exit<A, E>): Outcome => {
  if (Exit.isSuccess(exit)) return { _tag: "success" }
  const error = Cause.failureOption(exit.cause)
  if (Option.isNone(error)) return { _tag: "release" }
  if (isTransient(error.value)) return { _tag: "failure", kind: kindOf(error.value) }
  return error.value instanceof InvalidGrant ? { _tag: "success" } : { _tag: "error", kind: kindOf(error.value) }
}

/**
 * A circuit breaker over Ref and Clock. Only transient failures (ProviderUnavailable,
 * which includes timeouts, and RateLimited) count: every other answer means the platform is
 * reachable, so an invalid_grant never opens the breaker for every user. Interrupted calls
 * and defects release their half-open slot without counting.
 */
export const make = (name: string, overrides: Partial<BreakerSettings> = {}): Effect.Effect<CircuitBreaker> =>
  Effect.gen(function*() {
    const settings = { ...defaultBreakerSettings, ...overrides }
    const recoveryMs = Duration.toMillis(settings.recoveryTimeout)
    const ref = yield* Ref.make<State>({
      phase: { _tag: "closed" },
      generation: 0,
      consecutiveFailures: 0,
      openedCount: 0,
      lastFailureAt: null,
      lastFailureKind: null,
      lastErrorAt: null,
      lastErrorKind: null
    })
    // Completed, and replaced, each time the breaker opens: wakes retries sleeping towards a dead platform.
    const signal = yield* Ref.make(yield* Deferred.make<void>())
    const signalOpening = Effect.flatMap(Deferred.make<void>(), (fresh) =>
      Effect.flatMap(Ref.getAndSet(signal, fresh), (opened) => Deferred.succeed(opened, undefined)))

    const announce = (transitions: ReadonlyArray<Transition>) =>
      transitions.length === 0 ? Effect.void : Effect.forEach(transitions, ([from, to]) =>
        Effect.all([
          Metric.increment(withTags(breakerTransitions, { platform: name, from, to })),
          Metric.set(withTags(breakerState, { platform: name }), stateCode[to]),
          (to === "open" ? Effect.logWarning : Effect.logInfo)(`circuit breaker ${from} -> ${to}`).pipe(
            Effect.annotateLogs({ platform: name, from, to })
          ),
          to === "open" ? signalOpening : Effect.void
        ]), { discard: true })

    const moveTo = (s: State, phase: Phase): State => ({
      ...s,
      phase,
      generation: s.generation + 1,
      openedCount: phase._tag === "open" ? s.openedCount + 1 : s.openedCount
    })

    const rejection = (s: State, now: number): number | null => {
      const p = s.phase
      if (p._tag === "open") {
        const left = p.openedAt + recoveryMs - now
        return left > 0 ? left : null
      }
      return p._tag === "half_open" && p.inFlight >= settings.halfOpenMaxCalls ? HALF_OPEN_RETRY_HINT_MS : null
    }

    const admit = (now: number) =>
      Ref.modify(ref, (s): readonly [readonly [Admission, ReadonlyArray<Transition>], State] => {
        const p = s.phase
        const retryAfterMs = rejection(s, now)
        if (retryAfterMs !== null) return [[{ _tag: "reject", retryAfterMs }, []], s]
        switch (p._tag) {
          case "closed":
            return [[{ _tag: "run", generation: s.generation, trial: false }, []], s]
          case "open": {
            const next = moveTo(s, { _tag: "half_open", inFlight: 1, successes: 0 })
            return [[{ _tag: "run", generation: next.generation, trial: true }, [["open", "half_open"]]], next]
          }
          case "half_open":
            return [[{ _tag: "run", generation: s.generation, trial: true }, []], { ...s, phase: { ...p, inFlight: p.inFlight + 1 } }]
        }
      })

    const settle = (admission: { readonly generation: number; readonly trial: boolean }, outcome: Outcome, now: number) =>
      Ref.modify(ref, (s): readonly [ReadonlyArray<Transition>, State] => {
        const noted = outcome._tag === "failure"
          ? { ...s, lastFailureAt: now, lastFailureKind: outcome.kind }
          : outcome._tag === "error"
          ? { ...s, lastErrorAt: now, lastErrorKind: outcome.kind }
          : s
        if (admission.generation !== s.generation || outcome._tag === "release" && s.phase._tag !== "half_open") return [[], noted]
        const p = s.phase
        const failures = outcome._tag === "failure" ? s.consecutiveFailures + 1 : 0
        if (p._tag === "closed") {
          return failures >= settings.failureThreshold
            ? [[["closed", "open"]], moveTo({ ...noted, consecutiveFailures: failures }, { _tag: "open", openedAt: now })]
            : [[], { ...noted, consecutiveFailures: failures }]
        }
        if (p._tag === "half_open" && admission.trial) {
          const inFlight = Math.max(0, p.inFlight - 1)
          if (outcome._tag === "release") return [[], { ...noted, phase: { ...p, inFlight } }]
          if (outcome._tag === "failure") return [[["half_open", "open"]], moveTo({ ...noted, consecutiveFailures: failures }, { _tag: "open", openedAt: now })]
          const successes = p.successes + 1
          return successes >= settings.successThreshold
            ? [[["half_open", "closed"]], moveTo({ ...noted, consecutiveFailures: 0 }, { _tag: "closed" })]
            : [[], { ...noted, consecutiveFailures: 0, phase: { _tag: "half_open", inFlight, successes } }]
        }
        return [[], noted]
      })

    const protect = <A, E, R>(
      effect: Effect.Effect<A, E, R>,
      settled?: (exit: Exit.Exit<A, E>, elapsedMs: number) => Effect.Effect<void>
    ): Effect.Effect<A, E | CircuitOpen, R> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(Clock.currentTimeMillis, (started) =>
          Effect.flatMap(admit(started), ([admission, opened]): Effect.Effect<A, E | CircuitOpen, R> => {
            if (admission._tag === "reject") {
              return Effect.zipRight(announce(opened), Effect.fail(new CircuitOpen({ platform: name, retryAfterMs: admission.retryAfterMs })))
            }
            // However the call ends (interrupted too: this runs in the mask), its outcome is settled.
            const end = (exit: Exit.Exit<A, E>) =>
              Effect.flatMap(Clock.currentTimeMillis, (now) => {
                const counted = Effect.flatMap(settle(admission, classify(exit), now), announce)
                return Effect.zipRight(settled === undefined ? counted : Effect.zipRight(counted, settled(exit, now - started)), exit)
              })
            return Effect.zipRight(announce(opened), Effect.flatMap(Effect.exit(restore(effect)), end))
          }))
      )

    const date = (ms: number | null) => (ms === null ? null : new Date(ms))

    const health = Effect.gen(function*() {
      const s = yield* Ref.get(ref)
      const now = yield* Clock.currentTimeMillis
      const p = s.phase
      return {
        state: p._tag,
        consecutiveFailures: s.consecutiveFailures,
        halfOpenSuccesses: p._tag === "half_open" ? p.successes : 0,
        openedCount: s.openedCount,
        lastFailureAt: date(s.lastFailureAt),
        lastFailureKind: s.lastFailureKind,
        lastErrorAt: date(s.lastErrorAt),
        lastErrorKind: s.lastErrorKind,
        retryAfterMs: p._tag === "open" ? Math.max(0, p.openedAt + recoveryMs - now) : null
      } satisfies BreakerHealth
    })

    const failsFast = Effect.zipWith(Ref.get(ref), Clock.currentTimeMillis, (s, now) => rejection(s, now) !== null)

    // The signal is read before the state: an opening between the two completes the signal read.
    const opened = Effect.flatMap(Ref.get(signal), (next) =>
      Effect.flatMap(failsFast, (now) => (now ? Effect.void : Deferred.await(next))))

    yield* Metric.set(withTags(breakerState, { platform: name }), 0)
    return { name, protect, health, state: Effect.map(Ref.get(ref), (s) => s.phase._tag), failsFast, opened }
  })
