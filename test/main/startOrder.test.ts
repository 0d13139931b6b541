import { createServer } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Redacted, Scope } from "effect"
import { pgClientLayer } from "../../src/db/Database.js"
import { migrate } from "../../src/db/migrations.js"
import { randomKey } from "../support/config.js"
import { freshDatabase, testPool } from "../support/database.js"
import { FRONTEND, redirectUri } from "../support/harness.js"
import { startFakeGsc } from "../support/platforms/index.js"
import { keyVariable, scratchDirectory, seedDue, startService } from "../support/processes.js"

const key = randomKey("k1")

describe("the order of a start", () => {
  it("a port in use stops the start before the monitor calls any platform", async () => {
    const fake = await startFakeGsc()
    const scope = Effect.runSync(Scope.make())
    const taken = createServer()
    await new Promise<void>((listening) => taken.listen(0, "127.0.0.1", () => listening()))
    const address = taken.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    try {
      const url = await Effect.runPromise(Scope.extend(freshDatabase, scope))
      await Effect.runPromise(migrate().pipe(Effect.provide(pgClientLayer(Redacted.make(url), testPool)), Effect.orDie))
      await seedDue(url, key, fake, "gsc", ["due-1", "due-2"])
      const service = startService(["serve"], {
        DEPLOY_ENV: "development",
        FRONTEND_URL: FRONTEND,
        HOST: "127.0.0.1",
        PORT: String(port),
        DATABASE_URL: url,
        TOKEN_ENCRYPTION_KEYS: keyVariable(key),
        API_KEYS: "process-test-api-key-0123456789",
        ...fake.env(redirectUri("gsc"))
      }, scratchDirectory())
      const exit = await service.exit
      expect(exit.code).toBe(1)
      expect(service.lines).toContain(`error: PORT: 127.0.0.1:${port} is already in use`)
      expect(fake.requestsTo("token")).toEqual([])
    } finally {
      taken.close()
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await fake.close()
    }
  }, 60_000)
})
