import { Clock, Effect } from "effect"
import { TokenCipher } from "../crypto/TokenCipher.js"
import { makeBatcher } from "../db/batching.js"
import { ConnectionRepository } from "../db/ConnectionRepository.js"
import type { Connection } from "../domain/Connection.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { platformStatus } from "./status.js"

/**
 * The answer to "which platforms is this user connected to?", for every platform of the
 * catalog or one, read from storage (the status cache sits in front of it).
 */
export class Statuses extends Effect.Service<Statuses>()("Integrations/Statuses", {
  dependencies: [ProviderRegistry.Default, ConnectionRepository.Default, TokenCipher.Default],
  scoped: Effect.gen(function*() {
    const registry = yield* ProviderRegistry
    const connections = yield* ConnectionRepository
    const cipher = yield* TokenCipher
    const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

    const catalogListing = Effect.zipWith(registry.platforms, registry.degraded, (platforms, degraded) =>
      platforms.map((p) => ({ ...p, degradedReason: degraded.get(p.key) ?? null })))

    /**
     * A user's connections, read together with those of the users asked about at the same
     * time: under load, one statement serves many status requests.
     */
    const connectionsOf = yield* makeBatcher(
      (userIds: ReadonlyArray<string>) =>
        Effect.map(connections.findByUsers(userIds), (rows) => {
          const byUser = new Map<string, Array<Connection>>()
          for (const row of rows) {
            const list = byUser.get(row.userId)
            if (list === undefined) byUser.set(row.userId, [row])
            else list.push(row)
          }
          return (userId: string): ReadonlyArray<Connection> => byUser.get(userId) ?? []
        }),
      // While the database stalls, every worker is stuck on a statement: a request queued behind
      // them is failed with theirs, rather than waiting for them to fail before its own even starts.
      { workers: 4, maxBatch: 100, failsWaiting: (error) => error._tag === "DatabaseUnavailable" }
    )

    const statuses = (userId: string) =>
      Effect.gen(function*() {
        const [platforms, rows, t] = yield* Effect.all([catalogListing, connectionsOf.lookup(userId), now])
        return platforms.map((p) => platformStatus(p, rows.filter((r) => r.platform === p.key), t, cipher.knows))
      })

    const status = (userId: string, platform: string) =>
      Effect.gen(function*() {
        yield* registry.definition(platform)
        const [platforms, all, t] = yield* Effect.all([catalogListing, connectionsOf.lookup(userId), now])
        const rows = all.filter((r) => r.platform === platform)
        const listing = platforms.find((p) => p.key === platform)
        return platformStatus(listing ?? { key: platform, displayName: platform, configured: false }, rows, t, cipher.knows)
      })

    return { statuses, status } as const
  })
}) {}
