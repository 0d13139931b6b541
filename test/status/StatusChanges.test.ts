import * as PgClient from "@effect/sql-pg/PgClient"
import { describe, expect, it, layer } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Layer, Redacted } from "effect"
import Pg from "pg"
import { pgClientLayer } from "../../src/db/Database.js"
import { CHANNEL, MAX_PAYLOAD_BYTES, payloads, StatusChanges, StatusChangesLive } from "../../src/status/StatusChanges.js"
import { freshDatabase, TestDatabaseLive, testPool } from "../support/database.js"
import { stallingProxy } from "../support/stallingProxy.js"

type Change = { readonly userId: string; readonly platform: string } | "all"

/** Another process on the database at `url`: a plain connection listening on the channel, recording payloads. */
const otherProcessOn = (url: Redacted.Redacted) =>
  Effect.gen(function*() {
    const received: Array<string> = []
    yield* Effect.acquireRelease(
      Effect.promise(async () => {
        const client = new Pg.Client({ connectionString: Redacted.value(url) })
        await client.connect()
        client.on("notification", (message) => {
          if (message.payload !== undefined) received.push(message.payload)
        })
        await client.query(`LISTEN ${CHANNEL}`)
        return client
      }),
      (client) => Effect.promise(() => client.end())
    )
    return received
  })

/** Another process on the test's database. */
const otherProcess = Effect.gen(function*() {
  const sql = yield* PgClient.PgClient
  const url = sql.config.url
  if (url === undefined) return yield* Effect.dieMessage("the test database has no URL")
  return yield* otherProcessOn(url)
})

/** The changes told to this process's listeners, as they arrive. */
const recorder = Effect.gen(function*() {
  const changes = yield* StatusChanges
  const told: Array<Change> = []
  yield* changes.subscribe((change) => Effect.sync(() => void told.push(change)))
  return told
})

/** Polls every 10 ms until `done` holds, failing the test after `within`. */
const eventually = (done: () => boolean, within: Duration.DurationInput = "5 seconds") =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(within)
    while (!done()) {
      if ((yield* Clock.currentTimeMillis) > deadline) return yield* Effect.dieMessage("timed out waiting")
      yield* Effect.sleep("10 millis")
    }
  })

const decodePairs = (payload: string): Array<[string, string]> => {
  const parsed: unknown = JSON.parse(payload)
  return Array.isArray(parsed)
    ? parsed.flatMap((pair: unknown) => Array.isArray(pair) && typeof pair[0] === "string" && typeof pair[1] === "string" ? [[pair[0], pair[1]]] : [])
    : []
}

describe("payloads", () => {
  it("packs pairs into JSON arrays under PostgreSQL's 8000-byte limit, each pair once", () => {
    const pairs = Array.from({ length: 1000 }, (_, i): [string, string] => [`${"u".repeat(195)}${String(i).padStart(4, "0")}`, "wordpress"])
    const sent = payloads([...pairs, ...pairs.slice(0, 10)])
    for (const payload of sent) expect(Buffer.byteLength(payload, "utf8")).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES)
    expect(sent.flatMap(decodePairs)).toEqual(pairs)
    expect(sent.length).toBeLessThan(40)
  })

  it("counts bytes, not characters", () => {
    const pairs = Array.from({ length: 500 }, (_, i): [string, string] => [`ü${"é".repeat(40)}${i}`, "gsc"])
    for (const payload of payloads(pairs)) expect(Buffer.byteLength(payload, "utf8")).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES)
  })
})

describe("StatusChanges on PostgreSQL", () => {
  layer(StatusChangesLive.pipe(Layer.provideMerge(TestDatabaseLive)), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.scoped("a burst of 1,000 changes tells this process at once and others in a handful of statements", () =>
      Effect.gen(function*() {
        const changes = yield* StatusChanges
        const told = yield* recorder
        const other = yield* otherProcess
        const users = Array.from({ length: 1000 }, (_, i) => `burst-user-${i}`)
        for (const user of users) yield* changes.publish(user, "gsc")
        // Here: before any statement could have been sent.
        expect(new Set(told.flatMap((c) => (c !== "all" && c.userId.startsWith("burst-user-") ? [c.userId] : []))).size).toBe(1000)
        yield* eventually(() => new Set(other.flatMap(decodePairs).map(([u]) => u)).size === 1000)
        expect(other.length).toBeLessThanOrEqual(6)
      }))

    it.scoped("changes published together tell this process's listeners of each, and other processes", () =>
      Effect.gen(function*() {
        const changes = yield* StatusChanges
        const told = yield* recorder
        const other = yield* otherProcess
        yield* changes.publishMany([{ userId: "many-1", platform: "gsc" }, { userId: "many-2", platform: "bing" }])
        expect(told.filter((c) => c !== "all" && c.userId.startsWith("many-"))).toEqual([
          { userId: "many-1", platform: "gsc" },
          { userId: "many-2", platform: "bing" }
        ])
        yield* eventually(() => other.some((p) => p.includes("many-2")))
        expect(other.flatMap(decodePairs).filter(([u]) => u.startsWith("many-"))).toEqual([["many-1", "gsc"], ["many-2", "bing"]])
      }))

    it.scoped("a single change reaches another process within milliseconds", () =>
      Effect.gen(function*() {
        const changes = yield* StatusChanges
        const other = yield* otherProcess
        const start = yield* Clock.currentTimeMillis
        yield* changes.publish("lone-user", "bing")
        yield* eventually(() => other.some((p) => p.includes("lone-user")), "1 second")
        expect((yield* Clock.currentTimeMillis) - start).toBeLessThan(250)
        expect(other.flatMap(decodePairs)).toEqual([["lone-user", "bing"]])
      }))

    it.scoped("notifications from other processes reach this process's listeners, in the old format too", () =>
      Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        const told = yield* recorder
        yield* sql`select pg_notify(${CHANNEL}, ${JSON.stringify([["remote-1", "wix"], ["remote-2", "gsc"]])})`
        yield* sql`select pg_notify(${CHANNEL}, ${JSON.stringify({ u: "remote-old", p: "bing" })})`
        yield* eventually(() => told.some((c) => c !== "all" && c.userId === "remote-old"))
        expect(told.filter((c) => c !== "all")).toEqual([
          { userId: "remote-1", platform: "wix" },
          { userId: "remote-2", platform: "gsc" },
          { userId: "remote-old", platform: "bing" }
        ])
      }))

    it.scoped("a killed LISTEN connection makes listeners drop everything, and listening resumes", () =>
      Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        const told = yield* recorder
        yield* sql`select pg_terminate_backend(pid) from pg_stat_activity
          where datname = current_database() and application_name = 'oauth-integrations-listen'`
        yield* eventually(() => told.includes("all"))
        // Listening again: a notification sent now arrives.
        const arrived = Effect.gen(function*() {
          yield* sql`select pg_notify(${CHANNEL}, ${JSON.stringify([["after-kill", "gsc"]])})`
          yield* Effect.sleep("50 millis")
          return told.some((c) => c !== "all" && c.userId === "after-kill")
        })
        expect(yield* arrived.pipe(Effect.repeat({ until: (ok) => ok }), Effect.timeout("10 seconds"))).toBe(true)
      }))
  })
})

describe("StatusChanges with a stalled database", () => {
  it.scopedLive("changes whose notification could not be sent while the database stalled reach other processes once it answers", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const proxy = yield* stallingProxy(url)
      const statementTimeout = Duration.seconds(1)
      const context = yield* Layer.build(
        StatusChangesLive.pipe(Layer.provideMerge(pgClientLayer(Redacted.make(proxy.url), { ...testPool, statementTimeout })))
      ).pipe(Effect.orDie)
      const changes = Context.get(context, StatusChanges)
      const other = yield* otherProcessOn(Redacted.make(url))
      yield* proxy.freeze
      yield* changes.publish("stalled-user", "gsc")
      // Past the statement timeout: that NOTIFY has failed, never sent.
      yield* Effect.sleep(Duration.times(statementTimeout, 2))
      yield* proxy.thaw
      yield* eventually(() => other.some((p) => p.includes("stalled-user")), "10 seconds")
    }))
})
