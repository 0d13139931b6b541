import { Clock, Duration, Effect, Exit, Metric, Ref } from "effect"
import { CircuitOpen, isTransient, ProviderUnavailable } from "../domain/errors.js"
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
  readonly consecutiveFailures: number
  readonly halfOpenSuccesses: number
  readonly openedCount: number
  readonly lastFailureAt: Date | null
  readonly lastFailureKind: string | null
  /** While open: milliseconds until a trial is admitted. */
  readonly retryAfterMs: number | null
}

export interface CircuitBreaker {
  readonly name: string
  readonly protect: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CircuitOpen, R>
  readonly health: Effect.Effect<BreakerHealth>
  /** The state alone, cheaply (read on every status request). */
  readonly state: Effect.Effect<BreakerState>
}

type Phase =
  | { readonly _tag: "closed"; readonly failures: number }
  | { readonly _tag: "open"; readonly openedAt: number }
  | { readonly _tag: "half_open"; readonly inFlight: number; readonly successes: number }

interface State {
  readonly phase: Phase
  /** Bumped on every transition: an outcome only counts in the phase its call started in. */
  readonly generation: number
  readonly openedCount: number
  readonly lastFailureAt: number | null
  readonly lastFailureKind: string | null
}

type Admission =
  | { readonly _tag: "run"; readonly generation: number; readonly trial: boolean }
  | { readonly _tag: "reject"; readonly retryAfterMs: number }

type Transition = readonly [from: BreakerState, to: BreakerState]

/** While half open and full, callers are told to come back in a second. */
const HALF_OPEN_RETRY_HINT_MS = 1000

const stateCode: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 }

const failureKind = (error: unknown): string =>
  error instanceof ProviderUnavailable
    ? `ProviderUnavailable:${error.reason}`
    : typeof error === "object" && error !== null && "_tag" in error
    ? String(error._tag)
    : "unknown"

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
      phase: { _tag: "closed", failures: 0 },
      generation: 0,
      openedCount: 0,
      lastFailureAt: null,
      lastFailureKind: null
    })

    const announce = (transitions: ReadonlyArray<Transition>) =>
      Effect.forEach(transitions, ([from, to]) =>
        Effect.all([
          Metric.increment(withTags(breakerTransitions, { platform: name, from, to })),
          Metric.set(withTags(breakerState, { platform: name }), stateCode[to]),
          (to === "open" ? Effect.logWarning : Effect.logInfo)(`circuit breaker ${from} -> ${to}`).pipe(
            Effect.annotateLogs({ platform: name, from, to })
          )
        ]), { discard: true })

    const moveTo = (s: State, phase: Phase): State => ({
      ...s,
      phase,
      generation: s.generation + 1,
      openedCount: phase._tag === "open" ? s.openedCount + 1 : s.openedCount
    })

    const admit = (now: number) =>
      Ref.modify(ref, (s): readonly [readonly [Admission, ReadonlyArray<Transition>], State] => {
        const p = s.phase
        switch (p._tag) {
          case "closed":
            return [[{ _tag: "run", generation: s.generation, trial: false }, []], s]
          case "open": {
            const left = p.openedAt + recoveryMs - now
            if (left > 0) return [[{ _tag: "reject", retryAfterMs: left }, []], s]
            const next = moveTo(s, { _tag: "half_open", inFlight: 1, successes: 0 })
            return [[{ _tag: "run", generation: next.generation, trial: true }, [["open", "half_open"]]], next]
          }
          case "half_open":
            return p.inFlight < settings.halfOpenMaxCalls
              ? [[{ _tag: "run", generation: s.generation, trial: true }, []], { ...s, phase: { ...p, inFlight: p.inFlight + 1 } }]
              : [[{ _tag: "reject", retryAfterMs: HALF_OPEN_RETRY_HINT_MS }, []], s]
        }
      })

    type Outcome = "success" | "failure" | "release"

    const settle = (admission: { readonly generation: number; readonly trial: boolean }, outcome: Outcome, kind: string, now: number) =>
      Ref.modify(ref, (s): readonly [ReadonlyArray<Transition>, State] => {
        const noted = outcome === "failure" ? { ...s, lastFailureAt: now, lastFailureKind: kind } : s
        if (admission.generation !== s.generation) return [[], noted]
        const p = s.phase
        if (p._tag === "closed") {
          if (outcome === "success") return [[], { ...noted, phase: { _tag: "closed", failures: 0 } }]
          if (outcome === "release") return [[], noted]
          const failures = p.failures + 1
          return failures >= settings.failureThreshold
            ? [[["closed", "open"]], moveTo(noted, { _tag: "open", openedAt: now })]
            : [[], { ...noted, phase: { _tag: "closed", failures } }]
        }
        if (p._tag === "half_open" && admission.trial) {
          if (outcome === "failure") return [[["half_open", "open"]], moveTo(noted, { _tag: "open", openedAt: now })]
          if (outcome === "release") return [[], { ...noted, phase: { ...p, inFlight: Math.max(0, p.inFlight - 1) } }]
          const successes = p.successes + 1
          return successes >= settings.successThreshold
            ? [[["half_open", "closed"]], moveTo(noted, { _tag: "closed", failures: 0 })]
            : [[], { ...noted, phase: { _tag: "half_open", inFlight: Math.max(0, p.inFlight - 1), successes } }]
        }
        return [[], noted]
      })

    const protect = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | CircuitOpen, R> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const [admission, opened] = yield* Effect.flatMap(Clock.currentTimeMillis, admit)
          yield* announce(opened)
          if (admission._tag === "reject") return yield* new CircuitOpen({ platform: name, retryAfterMs: admission.retryAfterMs })
          return yield* restore(effect).pipe(
            Effect.onExit((exit) =>
              Effect.gen(function*() {
                const now = yield* Clock.currentTimeMillis
                const failure = Exit.isFailure(exit) ? exit.cause : undefined
                const error = failure === undefined ? undefined : failure._tag === "Fail" ? failure.error : undefined
                const outcome: Outcome = Exit.isSuccess(exit)
                  ? "success"
                  : error === undefined
                  ? "release"
                  : isTransient(error)
                  ? "failure"
                  : "success"
                yield* announce(yield* settle(admission, outcome, failureKind(error), now))
              })
            )
          )
        })
      )

    const health = Effect.gen(function*() {
      const s = yield* Ref.get(ref)
      const now = yield* Clock.currentTimeMillis
      const p = s.phase
      return {
        state: p._tag,
        consecutiveFailures: p._tag === "closed" ? p.failures : 0,
        halfOpenSuccesses: p._tag === "half_open" ? p.successes : 0,
        openedCount: s.openedCount,
        lastFailureAt: s.lastFailureAt === null ? null : new Date(s.lastFailureAt),
        lastFailureKind: s.lastFailureKind,
        retryAfterMs: p._tag === "open" ? Math.max(0, p.openedAt + recoveryMs - now) : null
      } satisfies BreakerHealth
    })

    yield* Metric.set(withTags(breakerState, { platform: name }), 0)
    return { name, protect, health, state: Effect.map(Ref.get(ref), (s) => s.phase._tag) }
  })
