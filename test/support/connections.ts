import { Effect, Option, Redacted } from "effect"
import { ConnectionRepository } from "../../src/db/ConnectionRepository.js"
import type { Connection } from "../../src/domain/Connection.js"
import type { FakeOAuthPlatform } from "./platforms/index.js"
import { at } from "./time.js"

/** A stored connection as the repository reads it, for unit tests. */
export const connectionRow = (overrides: Partial<Connection> = {}): Connection => ({
  id: "c1",
  userId: "u1",
  platform: "gsc",
  accountId: "",
  status: "active",
  keyId: "k1",
  hasRefreshToken: true,
  tokenType: "Bearer",
  scope: "s",
  expiresAt: at(3600),
  providerData: {},
  refreshFailures: 0,
  lastRefreshError: null,
  lastRefreshedAt: null,
  nextAttemptAt: null,
  leaseUntil: null,
  invalidGrantStreak: 0,
  lastValidatedAt: null,
  expiryWarnedAt: null,
  unverified: false,
  failingSince: null,
  failingAnnounced: false,
  createdAt: at(0),
  updatedAt: at(0),
  ...overrides
})

/** Stores one connection per user with a token pair the fake platform knows, expiring within a minute. */
export const seedDueConnections = (fake: FakeOAuthPlatform, platform: string, users: ReadonlyArray<string>) =>
  Effect.flatMap(ConnectionRepository, (repo) =>
    Effect.forEach(users, (userId) => {
      const pair = fake.mint()
      return repo.upsert({
        userId,
        platform,
        accountId: "",
        providerData: {},
        tokens: {
          accessToken: Redacted.make(pair.accessToken),
          refreshToken: Option.fromNullable(pair.refreshToken).pipe(Option.map(Redacted.make)),
          tokenType: "Bearer",
          scope: null,
          expiresAt: new Date(Date.now() + 60_000)
        }
      }, new Date())
    }, { concurrency: 10, discard: true }))
