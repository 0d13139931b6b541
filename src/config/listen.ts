import { ServeError } from "@effect/platform/HttpServerError"
import { Effect, Layer } from "effect"
import { AppConfig } from "./AppConfig.js"
import { ConfigInvalid } from "./ConfigInvalid.js"

const codeOf = (cause: unknown) =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string" ? cause.code : undefined

/** The variable to fix when the server cannot listen on HOST:PORT, or undefined for another failure. */
export const listenProblem = (cause: unknown, host: string, port: number): string | undefined => {
  switch (codeOf(cause)) {
    case "EADDRINUSE":
      return `PORT: ${host}:${port} is already in use`
    case "EACCES":
      return `PORT: listening on ${host}:${port} is not permitted (ports below 1024 need privileges)`
    case "EADDRNOTAVAIL":
      return `HOST: ${host} is not an address of this machine`
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `HOST: ${host} cannot be resolved`
    default:
      return undefined
  }
}

/** A server layer whose failure to listen is reported as one line naming HOST or PORT, like any bad setting. */
export const explainListenFailure = <A, E, R>(server: Layer.Layer<A, E, R>) =>
  Layer.catchAll(server, (error) =>
    Layer.unwrapEffect(Effect.map(AppConfig, ({ host, port }) => {
      const problem = error instanceof ServeError ? listenProblem(error.cause, host, port) : undefined
      return Layer.fail(problem === undefined ? error : new ConfigInvalid({ problems: [problem] }))
    })))
