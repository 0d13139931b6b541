import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import { TokenCipher } from "../../src/crypto/TokenCipher.js"
import { ConnectionRepository } from "../../src/db/ConnectionRepository.js"
import { EventRepository, type NewEvent } from "../../src/db/EventRepository.js"
import { type NewState, StateRepository } from "../../src/db/StateRepository.js"
import type { Connection } from "../../src/domain/Connection.js"
import {
  CircuitOpen,
  InvalidClient,
  InvalidGrant,
  PlatformNotConfigured,
  type ProviderError,
  ProviderResponseInvalid,
  ProviderUnavailable,
  RateLimited,
  RefreshInProgress,
  UnknownPlatform
} from "../../src/domain/errors.js"
import { Grants } from "../../src/integrations/Grants.js"
import { Connect } from "../../src/integrations/Connect.js"
import { REFRESH_PENDING, Tokens } from "../../src/integrations/Tokens.js"
import { Refresher } from "../../src/integrations/Refresher.js"
import { StatusChanges } from "../../src/status/StatusChanges.js"
import { Statuses } from "../../src/status/Statuses.js"
import type { PlatformDefinition, PlatformSettings } from "../../src/platforms/definition.js"
import type { IntegrationProvider } from "../../src/registry/IntegrationProvider.js"
import { ProviderRegistry } from "../../src/registry/ProviderRegistry.js"
import { testConfig } from "../support/config.js"
import { connectionRow } from "../support/connections.js"
import { plainDefinition } from "../registry/scriptedHttp.js"
import { failureTagged } from "../support/effects.js"

// The service alone: every collaborator is a mock Layer; nothing here touches PostgreSQL or
// HTTP. Tests run on the TestClock, which starts at 0, so instants are offsets from the epoch.
const minutes = (n: number) => new Date(Duration.toMillis(Duration.minutes(n)))

const definition = (overrides: Partial<PlatformDefinition> = {}): PlatformDefinition =>
  plainDefinition("gsc", {
    displayName: "Google Search Console",
    endpoints: { authorize: "https://accounts.example/authorize", token: "https://accounts.example/token" },
    ...overrides
  })

const settings = (overrides: Partial<PlatformSettings> = {}): PlatformSettings => ({
  clientId: "client",
  clientSecret: Option.some(Redacted.make("secret")),
  redirectUri: "https://app.example.com/oauth/gsc/callback",
  urls: {},
  overridden: new Set(),
  scopes: ["read"],
  tokenBody: "form",
  pkce: true,
  timeout: Duration.seconds(10),
  ...overrides
})

const unexpected = (what: string) => Effect.dieMessage(`unexpected call: ${what}`)

const provider = (overrides: Partial<IntegrationProvider> = {}): IntegrationProvider => ({
  key: "gsc",
  displayName: "Google Search Console",
  definition: definition(),
  settings: settings(),
  authorizationUrl: () => unexpected("authorizationUrl"),
  exchangeCode: () => unexpected("exchangeCode"),
  refresh: () => unexpected("refresh"),
  revoke: () => unexpected("revoke"),
  account: () => unexpected("account"),
  validate: () => unexpected("validate"),
  health: unexpected("health"),
  breakerState: unexpected("breakerState"),
  budget: Duration.seconds(70),
  ...overrides
})

const registry = (found: IntegrationProvider | PlatformNotConfigured) =>
  Layer.mock(ProviderRegistry, {
    _tag: "Integrations/ProviderRegistry",
    keys: ["gsc"],
    get: (key) =>
      key !== "gsc"
        ? Effect.fail(new UnknownPlatform({ platform: key, known: ["gsc"] }))
        : found instanceof PlatformNotConfigured ? Effect.fail(found) : Effect.succeed(found),
    definition: (key) =>
      key !== "gsc"
        ? Effect.fail(new UnknownPlatform({ platform: key, known: ["gsc"] }))
        : Effect.succeed(found instanceof PlatformNotConfigured ? definition() : found.definition)
  })

/** The access token stored for every connection of these tests. */
const STORED = "stored-access-token"

interface Mocks {
  readonly provider?: IntegrationProvider | PlatformNotConfigured
  readonly rows?: ReadonlyArray<Connection>
  /** What a refresh gives: the refreshed row, or a failure after which `after` is the stored row. */
  readonly refresh?: { readonly ok: Connection } | { readonly error: ProviderError | RefreshInProgress; readonly after?: Connection }
  /** The refresh is still under way once the token endpoint's wait is over. */
  readonly pending?: boolean
  /** Which of the Refresher's ways the service took: waiting to the end, or within TOKEN_REFRESH_WAIT. */
  readonly waits?: Array<"to the end" | "within">
  readonly states?: Array<NewState>
  readonly events?: Array<NewEvent>
}

const refreshOutcome = (mocks: Mocks) =>
  mocks.refresh === undefined
    ? unexpected("Refresher.refresh")
    : "ok" in mocks.refresh
    ? Effect.succeed(mocks.refresh.ok)
    : Effect.fail(mocks.refresh.error)

const integrations = (mocks: Mocks) =>
  Layer.merge(Connect.DefaultWithoutDependencies, Tokens.DefaultWithoutDependencies).pipe(
    Layer.provide([
      registry(mocks.provider ?? provider()),
      Layer.mock(Refresher, {
        _tag: "Integrations/Refresher",
        refresh: () => Effect.zipRight(Effect.sync(() => mocks.waits?.push("to the end")), refreshOutcome(mocks)),
        refreshWithin: () =>
          Effect.zipRight(
            Effect.sync(() => mocks.waits?.push("within")),
            mocks.pending === true ? Effect.succeed(Option.none()) : Effect.asSome(refreshOutcome(mocks))
          )
      }),
      Layer.mock(ConnectionRepository, {
        _tag: "Integrations/ConnectionRepository",
        findByUserAndPlatform: () => Effect.succeed(mocks.rows ?? []),
        findById: (id) => {
          const after = mocks.refresh !== undefined && "error" in mocks.refresh ? mocks.refresh.after : undefined
          return Effect.succeed(Option.fromNullable(after ?? mocks.rows?.find((r) => r.id === id)))
        },
        tokens: (row) =>
          Effect.succeed({
            accessToken: Redacted.make(row.lastRefreshedAt === null ? STORED : "refreshed-access-token"),
            refreshToken: row.hasRefreshToken ? Option.some(Redacted.make("stored-refresh-token")) : Option.none()
          }),
        disconnect: (_userId, _platform, now) =>
          Effect.succeed((mocks.rows ?? []).map((r) => ({ ...r, status: "disconnected" as const, updatedAt: now })))
      }),
      Layer.mock(StateRepository, {
        _tag: "Integrations/StateRepository",
        create: (state) => Effect.sync(() => void mocks.states?.push(state))
      }),
      Layer.mock(EventRepository, {
        _tag: "Integrations/EventRepository",
        append: (event) => Effect.sync(() => void mocks.events?.push(event))
      }),
      Layer.mock(Grants, { _tag: "Integrations/Grants" }),
      Layer.mock(Statuses, { _tag: "Integrations/Statuses" }),
      TokenCipher.Default,
      StatusChanges.None,
      testConfig()
    ]),
    Layer.provide(testConfig())
  )

/** The connect and token flows over the same mocks. */
type Flows = Omit<Connect, "_tag"> & Omit<Tokens, "_tag">

const run = <A, E>(mocks: Mocks, use: (flows: Flows) => Effect.Effect<A, E>) =>
  Effect.flatMap(Effect.zipWith(Connect, Tokens, (connect, tokens): Flows => ({ ...connect, ...tokens })), use).pipe(Effect.provide(integrations(mocks)))

describe("Connect.authorize", () => {
  it.effect("fails with PlatformNotConfigured naming the variables, and stores no state", () =>
    Effect.gen(function*() {
      const states: Array<NewState> = []
      const notConfigured = new PlatformNotConfigured({ platform: "gsc", problems: ["set GSC_CLIENT_ID, GSC_CLIENT_SECRET, GSC_REDIRECT_URI"] })
      const error = yield* failureTagged(run({ provider: notConfigured, states }, (s) => s.authorize("u1", "gsc")), "PlatformNotConfigured")
      expect(error.problems).toEqual(["set GSC_CLIENT_ID, GSC_CLIENT_SECRET, GSC_REDIRECT_URI"])
      expect(states).toEqual([])
    }))

  it.effect("fails with UnknownPlatform listing the known keys", () =>
    Effect.gen(function*() {
      const error = yield* failureTagged(run({}, (s) => s.authorize("u1", "myspace")), "UnknownPlatform")
      expect(error.known).toEqual(["gsc"])
    }))

  it.effect("sends a PKCE challenge and stores its verifier only when the platform's settings say so", () =>
    Effect.gen(function*() {
      for (const pkce of [true, false]) {
        const states: Array<NewState> = []
        const challenges: Array<Option.Option<string>> = []
        const p = provider({
          settings: settings({ pkce }),
          authorizationUrl: (request) => Effect.sync(() => challenges.push(request.codeChallenge)).pipe(Effect.as("https://accounts.example/authorize?x"))
        })
        const payload = yield* run({ provider: p, states }, (s) => s.authorize("u1", "gsc"))
        expect(payload.details.pkce).toBe(pkce)
        expect(Option.isSome(challenges[0] ?? Option.none())).toBe(pkce)
        expect(states[0]?.codeVerifier !== null).toBe(pkce)
      }
    }))
})

describe("Tokens.accessToken", () => {
  // Valid for 3 more minutes: inside ACCESS_TOKEN_MIN_TTL (5 minutes), so a refresh is due.
  const soon = connectionRow({ expiresAt: minutes(3), lastRefreshedAt: null })

  it.effect("refreshes a token inside ACCESS_TOKEN_MIN_TTL and returns the new one", () =>
    Effect.gen(function*() {
      const refreshed = { ...soon, expiresAt: minutes(60), lastRefreshedAt: minutes(0) }
      const token = yield* run({ rows: [soon], refresh: { ok: refreshed } }, (s) => s.accessToken("u1", "gsc"))
      expect(Redacted.value(token.accessToken)).toBe("refreshed-access-token")
      expect(token.expiresAt).toEqual(minutes(60))
      expect(token.refreshError).toEqual(Option.none())
    }))

  it.effect("returns the still-valid stored token with RefreshPending when the refresh is not done within TOKEN_REFRESH_WAIT", () =>
    Effect.gen(function*() {
      const waits: Array<"to the end" | "within"> = []
      const refreshed = { ...soon, expiresAt: minutes(60), lastRefreshedAt: minutes(0) }
      const token = yield* run({ rows: [soon], refresh: { ok: refreshed }, pending: true, waits }, (s) => s.accessToken("u1", "gsc"))
      expect(Redacted.value(token.accessToken)).toBe(STORED)
      expect(token.expiresAt).toEqual(minutes(3))
      expect(token.refreshError).toEqual(Option.some(REFRESH_PENDING))
      expect(waits).toEqual(["within"])
    }))

  it.effect("waits for the refresh to its end when the stored token has expired", () =>
    Effect.gen(function*() {
      const waits: Array<"to the end" | "within"> = []
      const expired = connectionRow({ expiresAt: new Date(0), lastRefreshedAt: null })
      const refreshed = { ...expired, expiresAt: minutes(60), lastRefreshedAt: minutes(0) }
      const token = yield* run({ rows: [expired], refresh: { ok: refreshed }, pending: true, waits }, (s) => s.accessToken("u1", "gsc"))
      expect(Redacted.value(token.accessToken)).toBe("refreshed-access-token")
      expect(token.refreshError).toEqual(Option.none())
      expect(waits).toEqual(["to the end"])
    }))

  it.effect("returns a still-valid stored token, naming the error, when the refresh fails transiently", () =>
    Effect.gen(function*() {
      for (
        const error of [
          new ProviderUnavailable({ platform: "gsc", reason: "status", status: 503 }),
          new RateLimited({ platform: "gsc", retryAfterMs: 1000 }),
          new CircuitOpen({ platform: "gsc", retryAfterMs: 1000 }),
          new RefreshInProgress({ platform: "gsc" }),
          new ProviderResponseInvalid({ platform: "gsc", detail: "not JSON" })
        ]
      ) {
        const token = yield* run({ rows: [soon], refresh: { error } }, (s) => s.accessToken("u1", "gsc"))
        expect(Redacted.value(token.accessToken)).toBe(STORED)
        expect(token.expiresAt).toEqual(minutes(3))
        expect(token.refreshError).toEqual(Option.some(error._tag))
      }
    }))

  it.effect("returns the stored token after an invalid_grant the platform's tolerance absorbed (the row stays active)", () =>
    Effect.gen(function*() {
      const error = new InvalidGrant({ platform: "gsc" })
      const token = yield* run({ rows: [soon], refresh: { error, after: { ...soon, invalidGrantStreak: 1 } } }, (s) => s.accessToken("u1", "gsc"))
      expect(token.refreshError).toEqual(Option.some("InvalidGrant"))
    }))

  it.effect("fails with InvalidGrant when the refresh made the connection need re-authorisation", () =>
    Effect.gen(function*() {
      const error = new InvalidGrant({ platform: "gsc" })
      yield* failureTagged(
        run({ rows: [soon], refresh: { error, after: { ...soon, status: "needs_reauth" } } }, (s) => s.accessToken("u1", "gsc")),
        "InvalidGrant"
      )
    }))

  it.effect("fails with InvalidClient: our configuration is wrong, not the platform", () =>
    Effect.gen(function*() {
      const error = new InvalidClient({ platform: "gsc", error: "invalid_client" })
      yield* failureTagged(run({ rows: [soon], refresh: { error } }, (s) => s.accessToken("u1", "gsc")), "InvalidClient")
    }))

  it.effect("fails with the refresh's error when the stored token has already expired", () =>
    Effect.gen(function*() {
      const expired = connectionRow({ expiresAt: new Date(0), lastRefreshedAt: null })
      const error = new ProviderUnavailable({ platform: "gsc", reason: "timeout" })
      yield* failureTagged(run({ rows: [expired], refresh: { error } }, (s) => s.accessToken("u1", "gsc")), "ProviderUnavailable")
    }))

  it.effect("hands out a token without a refresh token while it lasts, without trying to refresh it", () =>
    Effect.gen(function*() {
      // No `refresh` mock: a refresh attempt would be a defect.
      const token = yield* run({ rows: [{ ...soon, hasRefreshToken: false }] }, (s) => s.accessToken("u1", "gsc"))
      expect(Redacted.value(token.accessToken)).toBe(STORED)
      expect(token.refreshError).toEqual(Option.none())
    }))

  it.effect("fails with NotConnected (expired) for an expired token without a refresh token", () =>
    Effect.gen(function*() {
      const error = yield* failureTagged(
        run({ rows: [connectionRow({ expiresAt: new Date(0), hasRefreshToken: false })] }, (s) => s.accessToken("u1", "gsc")),
        "NotConnected"
      )
      expect(error.status).toBe("expired")
    }))
})

describe("Connect.disconnect", () => {
  const row = connectionRow({ status: "active" })

  it.effect("revokes the refresh token where the platform offers revocation, then forgets the connection", () =>
    Effect.gen(function*() {
      const revoked: Array<string> = []
      const events: Array<NewEvent> = []
      const p = provider({
        definition: definition({ revocation: true }),
        revoke: (token) => Effect.sync(() => void revoked.push(Redacted.value(token)))
      })
      const result = yield* run({ provider: p, rows: [row], events }, (s) => s.disconnect("u1", "gsc"))
      expect(result).toEqual({ disconnected: 1, revoked: true })
      expect(revoked).toEqual(["stored-refresh-token"])
      expect(events.map((e) => [e.kind, e.detail])).toEqual([["disconnected", { revoked: true }]])
    }))

  it.effect("disconnects locally without calling the platform when it has no revocation", () =>
    Effect.gen(function*() {
      const events: Array<NewEvent> = []
      // revoke is left unexpected: a call would be a defect.
      const result = yield* run({ provider: provider({ definition: definition({ revocation: false }) }), rows: [row], events }, (s) => s.disconnect("u1", "gsc"))
      expect(result).toEqual({ disconnected: 1, revoked: false })
      expect(events.map((e) => e.detail)).toEqual([{ revoked: false }])
    }))

  it.effect("still disconnects locally when the revocation fails", () =>
    Effect.gen(function*() {
      const p = provider({
        definition: definition({ revocation: true }),
        revoke: () => Effect.fail(new ProviderUnavailable({ platform: "gsc", reason: "network" }))
      })
      const result = yield* run({ provider: p, rows: [row] }, (s) => s.disconnect("u1", "gsc"))
      expect(result).toEqual({ disconnected: 1, revoked: false })
    }))

  it.effect("fails with NotConnected when there is nothing to disconnect", () =>
    Effect.gen(function*() {
      yield* failureTagged(run({ rows: [{ ...row, status: "disconnected" }] }, (s) => s.disconnect("u1", "gsc")), "NotConnected")
    }))
})
