import { createServer as createHttpServer } from "node:http"
import { createServer, type Server } from "node:net"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { explainListenFailure, listenProblem } from "../../src/config/listen.js"
import { testConfig } from "../support/config.js"
import { failureTagged } from "../support/effects.js"

/** A port of 127.0.0.1 held by another server until the scope closes. */
const busyPort = Effect.acquireRelease(
  Effect.async<{ readonly server: Server; readonly port: number }>((resume) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address()
      resume(Effect.succeed({ server, port: typeof address === "object" && address !== null ? address.port : 0 }))
    })
  }),
  ({ server }) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
)

describe("listening on HOST:PORT", () => {
  it.scoped("a port in use stops the start with one line naming PORT", () =>
    Effect.gen(function*() {
      const { port } = yield* busyPort
      const server = explainListenFailure(NodeHttpServer.layer(createHttpServer, { port, host: "127.0.0.1" }))
      const error = yield* failureTagged(
        Layer.build(server).pipe(Effect.provide(testConfig({ host: "127.0.0.1", port })), Effect.scoped),
        "ConfigInvalid"
      )
      expect(error.problems).toEqual([`PORT: 127.0.0.1:${port} is already in use`])
    }))

  it("a port that may not be used is named with the rule", () => {
    const denied = Object.assign(new Error("listen EACCES: permission denied 0.0.0.0:80"), { code: "EACCES" })
    expect(listenProblem(denied, "0.0.0.0", 80)).toBe("PORT: listening on 0.0.0.0:80 is not permitted (ports below 1024 need privileges)")
  })

  it("an address that is not this machine's is reported as a HOST problem", () => {
    const foreign = Object.assign(new Error("listen EADDRNOTAVAIL"), { code: "EADDRNOTAVAIL" })
    expect(listenProblem(foreign, "10.1.2.3", 8080)).toBe("HOST: 10.1.2.3 is not an address of this machine")
  })
})
