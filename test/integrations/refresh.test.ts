import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Option, Redacted, Scope } from "effect"
import { ConnectionRepository } from "../../src/db/ConnectionRepository.js"
import { pgClientLayer } from "../../src/db/Database.js"
import { TokenResponseJson } from "../../src/http/schemas.js"
import { REFRESH_PENDING } from "../../src/integrations/Tokens.js"
import { type Instance, TOKEN_KEY } from "../support/app.js"
import { testPool } from "../support/database.js"
import { call, connect, json, post } from "../support/flow.js"
import { Harness, HarnessLive } from "../support/harness.js"

const query = <A extends object>(databaseUrl: string, run: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<A>, unknown>) =>
  Effect.flatMap(SqlClient.SqlClient, run).pipe(Effect.provide(pgClientLayer(Redacted.make(databaseUrl), testPool)), Effect.orDie)

const row = (databaseUrl: string, user: string, platform: string) =>
  query<{ status: string; refreshFailures: number; invalidGrantStreak: number; nextAttemptAt: Date | null; lastRefreshError: string | null }>(
    databaseUrl,
    (sql) => sql`select status, refresh_failures, invalid_grant_streak, next_attempt_at, last_refresh_error from oauth_connections where user_id = ${user} and platform = ${platform}`
  ).pipe(Effect.map((rows) => rows[0]))

const eventKinds = (databaseUrl: string, user: string) =>
  query<{ kind: string }>(databaseUrl, (sql) => sql`select kind from oauth_events where user_id = ${user} order by id`).pipe(
    Effect.map((rows) => rows.map((r) => r.kind))
  )

const tokenOf = (user: string, platform: string) =>
  Effect.flatMap(Harness, ({ instance }) =>
    Effect.flatMap(call(instance, `/v1/users/${user}/connections/${platform}/token`, { key: TOKEN_KEY }), (r) => json(r, TokenResponseJson)))

const refresh = (user: string, platform: string) => Effect.flatMap(Harness, ({ instance }) => post(instance, `/v1/users/${user}/connections/${platform}/refresh`))

// Fast retries so transient failures do not slow the suite.
const fast = { RETRY_INITIAL_DELAY: "10ms", RETRY_MAX_DELAY: "50ms" }

describe("refresh outcomes", () => {
  layer(HarnessLive({ env: fast }), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("invalid_grant marks the connection needs_reauth, with an event, and it is no longer connected", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* connect(instance, "rf-dead", "gsc")
        fakes.gsc.revokeAll()
        const response = yield* refresh("rf-dead", "gsc")
        expect(response.status).toBe(409)
        expect((yield* json(response))._tag).toBe("InvalidGrant")
        expect((yield* row(databaseUrl, "rf-dead", "gsc"))?.status).toBe("needs_reauth")
        expect(yield* eventKinds(databaseUrl, "rf-dead")).toEqual(["connected", "needs_reauth"])
        const status = yield* json(yield* call(instance, "/v1/users/rf-dead/connections/gsc"))
        expect(status).toMatchObject({ connected: false, status: "needs_reauth" })
        // Storms damped: asked again and again, the service answers 409 at once and calls the platform no more.
        const platformCalls = fakes.gsc.requests.length
        for (let i = 0; i < 5; i++) {
          const token = yield* call(instance, "/v1/users/rf-dead/connections/gsc/token", { key: TOKEN_KEY })
          expect(token.status).toBe(409)
          expect(yield* json(token)).toMatchObject({ _tag: "ReauthRequired", platform: "gsc", status: "needs_reauth" })
          const again = yield* refresh("rf-dead", "gsc")
          expect(again.status).toBe(409)
          expect((yield* json(again))._tag).toBe("ReauthRequired")
        }
        expect(fakes.gsc.requests.length).toBe(platformCalls)
        expect(yield* eventKinds(databaseUrl, "rf-dead")).toEqual(["connected", "needs_reauth"])
      }))

    it.effect("bing: one invalid_grant is transient (503, retry later); the third in a row means needs_reauth (409)", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* connect(instance, "rf-bing", "bing")
        fakes.bing.spuriousInvalidGrant(1)
        const tolerated = yield* refresh("rf-bing", "bing")
        expect(tolerated.status).toBe(503)
        expect((yield* json(tolerated))._tag).toBe("ProviderUnavailable")
        const afterOne = yield* row(databaseUrl, "rf-bing", "bing")
        expect(afterOne).toMatchObject({ status: "active", invalidGrantStreak: 1, lastRefreshError: "InvalidGrant" })
        expect(afterOne?.nextAttemptAt).not.toBeNull()
        expect((yield* refresh("rf-bing", "bing")).status).toBe(200)
        const recovered = yield* row(databaseUrl, "rf-bing", "bing")
        expect(recovered).toMatchObject({ status: "active", invalidGrantStreak: 0, refreshFailures: 0 })
        expect(yield* eventKinds(databaseUrl, "rf-bing")).toEqual(["connected", "refresh_failed", "refreshed", "recovered"])

        fakes.bing.spuriousInvalidGrant(3)
        expect((yield* refresh("rf-bing", "bing")).status).toBe(503)
        expect((yield* refresh("rf-bing", "bing")).status).toBe(503)
        expect((yield* row(databaseUrl, "rf-bing", "bing"))?.status).toBe("active")
        const third = yield* refresh("rf-bing", "bing")
        expect(third.status).toBe(409)
        expect((yield* json(third))._tag).toBe("InvalidGrant")
        expect((yield* row(databaseUrl, "rf-bing", "bing"))?.status).toBe("needs_reauth")
      }))

    it.effect("a platform that keeps failing: retried, then the failure is recorded with a next attempt, the connection stays active", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* connect(instance, "rf-flaky", "wix")
        const before = fakes.wix.requestsTo("token").length
        fakes.wix.setBehaviour("token", "unavailable", { times: 4 })
        const response = yield* refresh("rf-flaky", "wix")
        expect(response.status).toBe(503)
        expect((yield* json(response))._tag).toBe("ProviderUnavailable")
        expect(fakes.wix.requestsTo("token").length - before).toBe(4)
        const failed = yield* row(databaseUrl, "rf-flaky", "wix")
        expect(failed).toMatchObject({ status: "active", refreshFailures: 1, lastRefreshError: "ProviderUnavailable" })
        expect(failed?.nextAttemptAt?.getTime()).toBeGreaterThan(Date.now() + Duration.toMillis("50 seconds"))
        const status = yield* json(yield* call(instance, "/v1/users/rf-flaky/connections/wix"))
        expect(status.connected).toBe(true)
      }))

    it.effect("a transient failure then a success on retry: refreshed once, nothing recorded as failed", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* connect(instance, "rf-retry", "gsc")
        fakes.gsc.setBehaviour("token", "rate_limited", { times: 1, retryAfterSeconds: 0 })
        expect((yield* refresh("rf-retry", "gsc")).status).toBe(200)
        expect((yield* row(databaseUrl, "rf-retry", "gsc"))).toMatchObject({ refreshFailures: 0, status: "active" })
      }))

    it.effect("wordpress: validation refused with 403 marks the connection revoked", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* connect(instance, "rf-wp", "wordpress")
        fakes.wordpress.setBehaviour("me", "forbidden", { times: 1 })
        expect((yield* refresh("rf-wp", "wordpress")).status).toBe(409)
        expect((yield* row(databaseUrl, "rf-wp", "wordpress"))?.status).toBe("revoked")
        expect(yield* eventKinds(databaseUrl, "rf-wp")).toEqual(["connected", "revoked"])
      }))

    it.effect("the fresh-token endpoint refreshes a token inside the window and returns the new one", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* connect(instance, "rf-window", "bing")
        const first = yield* tokenOf("rf-window", "bing")
        yield* query(databaseUrl, (sql) => sql`update oauth_connections set expires_at = now() + interval '1 minute' where user_id = 'rf-window' returning 1`)
        const second = yield* tokenOf("rf-window", "bing")
        expect(second.access_token).not.toBe(first.access_token)
        expect(fakes.bing.isLiveAccessToken(second.access_token)).toBe(true)
        expect(new Date(second.expires_at ?? 0).getTime()).toBeGreaterThan(Date.now() + 3000 * 1000)
      }))

    it.effect("concurrent fresh-token calls on a rotating platform refresh once and all get a live token", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* connect(instance, "rf-race", "bing")
        yield* query(databaseUrl, (sql) => sql`update oauth_connections set expires_at = now() - interval '1 minute' where user_id = 'rf-race' returning 1`)
        const invalidBefore = fakes.bing.stats.invalidGrants
        const refreshesBefore = fakes.bing.stats.refreshes
        const answers = yield* Effect.all(
          Array.from({ length: 12 }, () => tokenOf("rf-race", "bing")),
          { concurrency: "unbounded" }
        )
        expect(fakes.bing.stats.refreshes - refreshesBefore).toBe(1)
        expect(fakes.bing.stats.invalidGrants).toBe(invalidBefore)
        for (const a of answers) expect(fakes.bing.isLiveAccessToken(a.access_token)).toBe(true)
      }))

    it.effect("a refresh that ends after the user disconnected does not bring the connection back", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* connect(instance, "rf-gone", "bing")
        fakes.bing.setBehaviour("token", "slow", { times: 1, delayMs: 800 })
        const refreshing = yield* Effect.fork(refresh("rf-gone", "bing"))
        yield* Effect.sleep("200 millis")
        expect((yield* call(instance, "/v1/users/rf-gone/connections/bing", { method: "DELETE" })).status).toBe(200)
        const answer = yield* Fiber.join(refreshing)
        expect(answer.status).toBe(404)
        expect((yield* row(databaseUrl, "rf-gone", "bing"))?.status).toBe("disconnected")
        expect(yield* eventKinds(databaseUrl, "rf-gone")).toEqual(["connected", "disconnected"])
      }))
  })
})

describe("timeouts", () => {
  layer(HarnessLive({ env: { ...fast, GSC_TIMEOUT: "200ms", GSC_RETRY_MAX: "0" } }), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("a platform slower than its timeout is unavailable (timeout), typed, never a 500", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "to-slow", "gsc")
        fakes.gsc.setBehaviour("token", "slow", { times: 1, delayMs: 1000 })
        const response = yield* refresh("to-slow", "gsc")
        expect(response.status).toBe(503)
        expect(yield* json(response)).toEqual({ _tag: "ProviderUnavailable", platform: "gsc", reason: "timeout" })
      }))

    it.effect("a malformed token response is reported as such", () =>
      Effect.gen(function*() {
        const { instance, fakes } = yield* Harness
        yield* connect(instance, "to-malformed", "bing")
        fakes.bing.setBehaviour("token", "malformed", { times: 1 })
        const response = yield* refresh("to-malformed", "bing")
        expect(response.status).toBe(502)
        expect((yield* json(response))._tag).toBe("ProviderResponseInvalid")
      }))

    it.effect("invalid_client is our configuration: 502, and the connection stays active", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* connect(instance, "to-client", "bing")
        fakes.bing.setBehaviour("token", "invalid_client", { times: 1 })
        const response = yield* refresh("to-client", "bing")
        expect(response.status).toBe(502)
        expect(yield* json(response)).toEqual({ _tag: "InvalidClient", platform: "bing", error: "invalid_client" })
        expect((yield* row(databaseUrl, "to-client", "bing"))?.status).toBe("active")
      }))
  })
})

/** TOKEN_REFRESH_WAIT of the test settings, and what a bound on it allows on top (generous: a loaded machine). */
const WAIT_MS = 2000
const MARGIN_MS = 2000
/** A platform that hangs far past the wait, yet answers within its request timeout (10 s). */
const HANG_MS = 6000

const setExpiry = (databaseUrl: string, user: string, interval: string) =>
  query(databaseUrl, (sql) => sql`update oauth_connections set expires_at = now() + ${interval}::interval where user_id = ${user} returning 1`)

/** One answer of the token endpoint on `instance`, which must be a 200, and how long it took. */
const timedToken = (instance: Instance, user: string, platform: string) =>
  Effect.gen(function*() {
    const started = Date.now()
    const response = yield* call(instance, `/v1/users/${user}/connections/${platform}/token`, { key: TOKEN_KEY })
    const ms = Date.now() - started
    expect(response.status, `the token endpoint answered ${response.status} after ${ms} ms`).toBe(200)
    return { ms, token: yield* json(response, TokenResponseJson) }
  })

/** The user's stored tokens, decrypted. */
const storedTokens = (instance: Instance, user: string, platform: string) =>
  Effect.flatMap(ConnectionRepository, (repo) =>
    Effect.flatMap(repo.findByUserAndPlatform(user, platform), (rows) => repo.tokens(rows[0]!))).pipe(Effect.provide(instance.context), Effect.orDie)

/** The stored access token once it is no longer `old`, polled for up to `withinMs`; none if it never changed. */
const storedAccessTokenOtherThan = (instance: Instance, user: string, platform: string, old: string, withinMs: number) =>
  Effect.gen(function*() {
    for (let waited = 0; waited <= withinMs; waited += 100) {
      const stored = yield* storedTokens(instance, user, platform)
      if (Redacted.value(stored.accessToken) !== old) return Option.some(stored)
      yield* Effect.sleep("100 millis")
    }
    return Option.none()
  })

const refreshTokenOf = (tokens: { readonly refreshToken: Option.Option<Redacted.Redacted<string>> }) =>
  Redacted.value(Option.getOrThrow(tokens.refreshToken))

describe("the token endpoint while a due refresh is slow", () => {
  layer(HarnessLive({ env: fast }), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("a platform that hangs: the stored token, still valid, is answered within TOKEN_REFRESH_WAIT with RefreshPending, and the refresh's rotated tokens are stored later", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* connect(instance, "tw-hang", "bing")
        const before = yield* storedTokens(instance, "tw-hang", "bing")
        yield* setExpiry(databaseUrl, "tw-hang", "1 minute")
        const refreshes = fakes.bing.stats.refreshes
        fakes.bing.setBehaviour("token", "slow", { times: 1, delayMs: HANG_MS })
        const { ms, token } = yield* timedToken(instance, "tw-hang", "bing")
        expect(ms).toBeLessThan(WAIT_MS + MARGIN_MS)
        expect(token.access_token).toBe(Redacted.value(before.accessToken))
        expect(token.refresh_error).toBe(REFRESH_PENDING)

        const after = yield* storedAccessTokenOtherThan(instance, "tw-hang", "bing", token.access_token, HANG_MS + 5000)
        expect(Option.isSome(after)).toBe(true)
        const stored = Option.getOrThrow(after)
        expect(fakes.bing.stats.refreshes - refreshes).toBe(1)
        expect(fakes.bing.isLiveRefreshToken(refreshTokenOf(stored))).toBe(true)
        expect(fakes.bing.isLiveRefreshToken(refreshTokenOf(before))).toBe(false)
        const next = yield* timedToken(instance, "tw-hang", "bing")
        expect(next.token.access_token).toBe(Redacted.value(stored.accessToken))
        expect(next.token.refresh_error).toBeNull()
      }))

    it.effect("another instance that finds the lease held by a slow refresh answers within TOKEN_REFRESH_WAIT with the stored token and RefreshPending, not 409/503", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl, startAnother } = yield* Harness
        const other = yield* startAnother()
        yield* connect(instance, "tw-lease", "bing")
        const before = yield* storedTokens(instance, "tw-lease", "bing")
        yield* setExpiry(databaseUrl, "tw-lease", "1 minute")
        const refreshes = fakes.bing.stats.refreshes
        fakes.bing.setBehaviour("token", "slow", { times: 1, delayMs: HANG_MS })
        const holder = yield* Effect.fork(timedToken(instance, "tw-lease", "bing"))
        // The first instance takes the lease and calls the platform.
        yield* Effect.sleep("500 millis")
        const { ms, token } = yield* timedToken(other, "tw-lease", "bing")
        expect(ms).toBeLessThan(WAIT_MS + MARGIN_MS)
        expect(token.access_token).toBe(Redacted.value(before.accessToken))
        expect(token.refresh_error).toBe(REFRESH_PENDING)
        yield* Fiber.join(holder)
        const after = yield* storedAccessTokenOtherThan(instance, "tw-lease", "bing", token.access_token, HANG_MS + 5000)
        expect(Option.isSome(after)).toBe(true)
        expect(fakes.bing.stats.refreshes - refreshes).toBe(1)
      }).pipe(Effect.scoped))

    it.effect("a platform that answers within TOKEN_REFRESH_WAIT: the caller gets the fresh token and no refresh error", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* connect(instance, "tw-quick", "bing")
        const before = yield* storedTokens(instance, "tw-quick", "bing")
        yield* setExpiry(databaseUrl, "tw-quick", "1 minute")
        fakes.bing.setBehaviour("token", "slow", { times: 1, delayMs: 800 })
        const { token } = yield* timedToken(instance, "tw-quick", "bing")
        expect(token.access_token).not.toBe(Redacted.value(before.accessToken))
        expect(fakes.bing.isLiveAccessToken(token.access_token)).toBe(true)
        expect(token.refresh_error).toBeNull()
      }))

    it.effect("an expired stored token: the caller waits for the slow refresh and gets the fresh token", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* connect(instance, "tw-expired", "bing")
        const before = yield* storedTokens(instance, "tw-expired", "bing")
        yield* setExpiry(databaseUrl, "tw-expired", "-1 minute")
        fakes.bing.setBehaviour("token", "slow", { times: 1, delayMs: WAIT_MS + 1500 })
        const { ms, token } = yield* timedToken(instance, "tw-expired", "bing")
        expect(ms).toBeGreaterThanOrEqual(WAIT_MS + 1500)
        expect(token.access_token).not.toBe(Redacted.value(before.accessToken))
        expect(fakes.bing.isLiveAccessToken(token.access_token)).toBe(true)
        expect(token.refresh_error).toBeNull()
      }))

    it.effect("shutdown while a background refresh's platform call is in flight waits for it, and its rotated tokens are stored", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl, startAnother } = yield* Harness
        const scope = yield* Scope.make()
        const other = yield* startAnother().pipe(Scope.extend(scope))
        yield* connect(instance, "tw-shutdown", "bing")
        const before = yield* storedTokens(instance, "tw-shutdown", "bing")
        yield* setExpiry(databaseUrl, "tw-shutdown", "1 minute")
        fakes.bing.setBehaviour("token", "slow", { times: 1, delayMs: WAIT_MS + 2000 })
        const { token } = yield* timedToken(other, "tw-shutdown", "bing")
        expect(token.refresh_error).toBe(REFRESH_PENDING)
        yield* Scope.close(scope, Exit.void)
        const stored = yield* storedTokens(instance, "tw-shutdown", "bing")
        expect(Redacted.value(stored.accessToken)).not.toBe(Redacted.value(before.accessToken))
        expect(fakes.bing.isLiveAccessToken(Redacted.value(stored.accessToken))).toBe(true)
        expect(fakes.bing.isLiveRefreshToken(refreshTokenOf(stored))).toBe(true)
      }))
  })
})

describe("next attempt after a platform's Retry-After", () => {
  layer(HarnessLive({ env: fast }), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("a Retry-After of ten days puts the next attempt off by at most RETRY_AFTER_MAX (1 h)", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* connect(instance, "ra-days", "gsc")
        yield* setExpiry(databaseUrl, "ra-days", "1 day")
        fakes.gsc.setBehaviour("token", "rate_limited", { times: 1, retryAfterSeconds: 864000 })
        const asked = Date.now()
        expect((yield* refresh("ra-days", "gsc")).status).toBe(503)
        const next = (yield* row(databaseUrl, "ra-days", "gsc"))?.nextAttemptAt?.getTime() ?? 0
        expect(next).toBeLessThanOrEqual(Date.now() + Duration.toMillis("1 hour"))
        expect(next).toBeGreaterThanOrEqual(asked + Duration.toMillis("1 hour") - 5000)
      }))

    it.effect("with the token valid 20 min more and MONITOR_INTERVAL 1 min, a Retry-After of 30 min gives a next attempt no later than its expiry minus 1 min", () =>
      Effect.gen(function*() {
        const { instance, fakes, databaseUrl } = yield* Harness
        yield* connect(instance, "ra-expiry", "gsc")
        yield* setExpiry(databaseUrl, "ra-expiry", "20 minutes")
        fakes.gsc.setBehaviour("token", "rate_limited", { times: 1, retryAfterSeconds: 1800 })
        expect((yield* refresh("ra-expiry", "gsc")).status).toBe(503)
        const [stored] = yield* query<{ nextAttemptAt: Date; expiresAt: Date }>(databaseUrl, (sql) =>
          sql`select next_attempt_at, expires_at from oauth_connections where user_id = 'ra-expiry'`)
        expect(stored?.nextAttemptAt.getTime()).toBeLessThanOrEqual((stored?.expiresAt.getTime() ?? 0) - Duration.toMillis("1 minute"))
        expect(stored?.nextAttemptAt.getTime()).toBeGreaterThan(Date.now() + Duration.toMillis("15 minutes"))
      }))
  })
})
