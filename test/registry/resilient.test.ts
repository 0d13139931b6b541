import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Logger, LogLevel, Metric, Option, Redacted, TestClock } from "effect"
import { makeOAuthClient } from "../../src/oauth/OAuthClient.js"
import { withTags } from "../../src/observability/labels.js"
import { providerCalls, tokenEndpointLatency } from "../../src/observability/metrics.js"
import type { PlatformDefinition, PlatformSettings } from "../../src/platforms/definition.js"
import { wix } from "../../src/platforms/wix.js"
import { makeResilientProvider } from "../../src/registry/resilient.js"
import * as CircuitBreaker from "../../src/resilience/CircuitBreaker.js"
import * as Policy from "../../src/resilience/policy.js"
import { defaultRetrySettings, type RetrySettings } from "../../src/resilience/retry.js"
import { acme, type Answer, oauthError, type Reply, scriptedHttp, type Sent, settingsOf, tokens } from "./scriptedHttp.js"

/** A resilient provider for `definition` over a scripted platform; retries without jitter. */
const setup = (
  definition: PlatformDefinition,
  answer: (sent: Sent, index: number) => Answer,
  options: {
    readonly retry?: Partial<RetrySettings>
    readonly breaker?: Partial<CircuitBreaker.BreakerSettings>
    readonly settings?: Partial<PlatformSettings>
  } = {}
) =>
  Effect.gen(function*() {
    const http = scriptedHttp(answer)
    const settings = settingsOf(definition, options.settings)
    const policy = yield* Policy.make(
      definition.key,
      { retry: { ...defaultRetrySettings, jitter: false, ...options.retry }, breaker: { ...CircuitBreaker.defaultBreakerSettings, ...options.breaker } },
      settings.timeout
    )
    const provider = makeResilientProvider(makeOAuthClient(definition, settings, http.timed(settings.timeout)), policy)
    return { provider, breaker: policy.breaker, sent: http.sent }
  })

const authorizeRequest = {
  state: Redacted.make("st-1"),
  codeChallenge: Option.some("challenge"),
  redirectUri: "https://app.example.com/oauth/acme/callback"
}

const down: Reply = { status: 503, text: "" }

/** Answers by endpoint: the token endpoint as `token` says (down by default), Wix's redirect session with a URL. */
const platform = (token: { answer: Reply }) => (sent: Sent): Reply =>
  sent.url.pathname.includes("redirect-session")
    ? { status: 200, json: { redirectSession: { fullUrl: "https://www.wix.com/login?session=1" } } }
    : token.answer

describe("resilient provider: the breaker observes HTTP requests, not operations", () => {
  it.effect("authorizes that build their URL locally leave a half-open breaker as it was, without a request", () =>
    Effect.gen(function*() {
      const token: { answer: Reply } = { answer: down }
      const { provider, breaker, sent } = yield* setup(acme, platform(token), { retry: { retries: 0 } })
      for (let i = 0; i < 5; i++) yield* Effect.flip(provider.refresh(Redacted.make("rt")))
      expect((yield* breaker.health).state).toBe("open")
      yield* TestClock.adjust("60 seconds")
      token.answer = tokens()
      yield* provider.refresh(Redacted.make("rt"))
      const requests = sent.length
      for (let i = 0; i < 3; i++) yield* provider.authorizationUrl(authorizeRequest)
      expect(yield* breaker.health).toMatchObject({ state: "half_open", halfOpenSuccesses: 1 })
      expect(sent).toHaveLength(requests)
    }))

  it.effect("authorize of a platform whose URL is built locally works while its breaker is open", () =>
    Effect.gen(function*() {
      const { provider, breaker } = yield* setup(acme, () => down, { retry: { retries: 0 }, breaker: { failureThreshold: 1 } })
      yield* Effect.flip(provider.refresh(Redacted.make("rt")))
      expect((yield* breaker.health).state).toBe("open")
      const url = yield* provider.authorizationUrl(authorizeRequest)
      expect(new URL(url).origin).toBe("https://acme.example")
    }))

  it.effect("Wix's authorize makes two requests, and each is one breaker observation", () =>
    Effect.gen(function*() {
      const token: { answer: Reply } = { answer: down }
      const { provider, breaker, sent } = yield* setup(wix, platform(token), {
        retry: { retries: 0 },
        breaker: { failureThreshold: 1, successThreshold: 2 }
      })
      yield* Effect.flip(provider.refresh(Redacted.make("rt")))
      yield* TestClock.adjust("60 seconds")
      token.answer = tokens()
      const before = sent.length
      const url = yield* provider.authorizationUrl({ ...authorizeRequest, redirectUri: "https://app.example.com/oauth/wix/callback" })
      expect(url).toBe("https://www.wix.com/login?session=1")
      expect(sent).toHaveLength(before + 2)
      // Two successful trials: the success threshold of 2 is met by one authorize.
      expect((yield* breaker.health).state).toBe("closed")
    }))

  it.effect("a code exchange is sent once, never retried", () =>
    Effect.gen(function*() {
      const { provider, sent } = yield* setup(acme, () => down)
      const error = yield* Effect.flip(provider.exchangeCode({ code: "c", codeVerifier: Option.none(), redirectUri: "https://app.example.com/oauth/acme/callback" }))
      expect(error._tag).toBe("ProviderUnavailable")
      expect(sent).toHaveLength(1)
    }))

  it.effect("budget is RETRY_BUDGET plus the request timeout", () =>
    Effect.gen(function*() {
      const { provider } = yield* setup(acme, () => down, { retry: { budget: Duration.seconds(45) }, settings: { timeout: Duration.seconds(5) } })
      expect(Duration.toMillis(provider.budget)).toBe(50_000)
    }))

  it.effect("no request of an operation runs past its budget, however many requests an attempt makes", () =>
    Effect.gen(function*() {
      // Each of Wix's two requests takes 8 s, within the 10 s timeout; the operation may take 0 + 10 s.
      const { provider } = yield* setup(wix, (sent) => ({ ...platform({ answer: tokens() })(sent), delay: "8 seconds" }), {
        retry: { budget: Duration.zero }
      })
      const fiber = yield* Effect.fork(Effect.flip(provider.authorizationUrl({ ...authorizeRequest, redirectUri: "https://app.example.com/oauth/wix/callback" })))
      yield* TestClock.adjust("10 seconds")
      const done = yield* Fiber.poll(fiber)
      expect(Option.isSome(done)).toBe(true)
      expect(yield* Fiber.join(fiber)).toMatchObject({ _tag: "ProviderUnavailable", reason: "timeout" })
    }))
})

describe("resilient provider: metrics and logs", () => {
  const latency = (key: string) =>
    Metric.value(withTags(tokenEndpointLatency, { platform: key, operation: "refresh" }))

  it.effect("the token-endpoint latency histogram records each request sent, and no fast failure", () =>
    Effect.gen(function*() {
      const definition = { ...acme, key: "latency-test" }
      const { provider } = yield* setup(
        definition,
        (_, i) => (i < 2 ? { ...down, delay: "100 millis" } : { ...tokens(), delay: "100 millis" }),
        { breaker: { failureThreshold: 3 } }
      )
      const fiber = yield* Effect.fork(provider.refresh(Redacted.make("rt")))
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(fiber)
      const after = yield* latency(definition.key)
      // Three requests of 100 ms each: the backoff sleeps (1 s, 2 s) are not in it.
      expect(after.count).toBe(3)
      expect(after.sum).toBeCloseTo(0.3, 6)
    }))

  it.effect("CircuitOpen rejections add no latency observation", () =>
    Effect.gen(function*() {
      const definition = { ...acme, key: "latency-open-test" }
      const { provider } = yield* setup(definition, () => down, { retry: { retries: 0 }, breaker: { failureThreshold: 1 } })
      yield* Effect.flip(provider.refresh(Redacted.make("rt")))
      for (let i = 0; i < 3; i++) expect((yield* Effect.flip(provider.refresh(Redacted.make("rt"))))._tag).toBe("CircuitOpen")
      expect((yield* latency(definition.key)).count).toBe(1)
    }))

  it.effect("provider_calls_total counts each operation by platform, operation and outcome", () =>
    Effect.gen(function*() {
      const one = yield* setup({ ...acme, key: "calls-one" }, () => tokens())
      const two = yield* setup({ ...acme, key: "calls-two" }, () => oauthError("invalid_grant"))
      yield* one.provider.refresh(Redacted.make("rt"))
      yield* one.provider.refresh(Redacted.make("rt"))
      yield* Effect.flip(two.provider.refresh(Redacted.make("rt")))
      const count = (platform: string, outcome: string) =>
        Effect.map(Metric.value(withTags(providerCalls, { platform, operation: "refresh", outcome })), (s) => s.count)
      expect(yield* count("calls-one", "ok")).toBe(2)
      expect(yield* count("calls-two", "ok")).toBe(0)
      expect(yield* count("calls-two", "InvalidGrant")).toBe(1)
    }))

  it.effect("fast failures are logged at debug level, real failures as warnings", () =>
    Effect.gen(function*() {
      const lines: Array<{ readonly level: string; readonly message: string }> = []
      const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ logLevel, message }) => void lines.push({ level: logLevel.label, message: String(message) })))
      const { provider } = yield* setup(acme, () => down, { retry: { retries: 0 }, breaker: { failureThreshold: 1 } })
      yield* Effect.flip(provider.refresh(Redacted.make("rt"))).pipe(Effect.provide(capture), Logger.withMinimumLogLevel(LogLevel.All))
      const before = lines.length
      for (let i = 0; i < 3; i++) yield* Effect.flip(provider.refresh(Redacted.make("rt"))).pipe(Effect.provide(capture), Logger.withMinimumLogLevel(LogLevel.All))
      expect(lines.slice(0, before).filter((l) => l.level === "WARN").map((l) => l.message)).toContain("refresh failed")
      const fast = lines.slice(before).filter((l) => l.message === "refresh failed")
      expect(fast.map((l) => l.level)).toEqual(["DEBUG", "DEBUG", "DEBUG"])
    }))
})
