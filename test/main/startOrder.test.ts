import { createServer } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { randomKey } from "../support/config.js"
import { redirectUri } from "../support/harness.js"
import { startFakeGsc } from "../support/platforms/index.js"
import { migratedDatabase, scratchDirectory, seedDue, serviceEnv, startService } from "../support/processes.js"

const key = randomKey("k1")

describe("the order of a start", () => {
  it("a port in use stops the start before the monitor calls any platform", async () => {
    const fake = await startFakeGsc()
    const taken = createServer()
    await new Promise<void>((listening) => taken.listen(0, "127.0.0.1", () => listening()))
    const address = taken.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    try {
      const url = await migratedDatabase()
      await seedDue(url, key, fake, "gsc", ["due-1", "due-2"])
      const service = startService(["serve"], { ...serviceEnv(key), PORT: String(port), DATABASE_URL: url, ...fake.env(redirectUri("gsc")) }, scratchDirectory())
      const exit = await service.exit
      expect(exit.code).toBe(1)
      expect(service.lines).toContain(`error: PORT: 127.0.0.1:${port} is already in use`)
      expect(fake.requestsTo("token")).toEqual([])
    } finally {
      taken.close()
      await fake.close()
    }
  }, 60_000)
})
