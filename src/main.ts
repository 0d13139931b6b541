import { ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect, Layer, Option } from "effect"
import { makeCli } from "./cli.js"
import { AppConfigLive, ConfigInvalid } from "./config/AppConfig.js"
import { EnvironmentLive } from "./config/provider.js"
import { DatabaseLive } from "./db/Database.js"
import { HttpLive } from "./http/server.js"
import { LoggingLive } from "./logging.js"

/** Configuration, then PostgreSQL (server or embedded) with migrations applied. */
export const StorageLive = DatabaseLive.pipe(Layer.provideMerge(AppConfigLive))

/** The whole service. */
export const MainLive = HttpLive.pipe(Layer.provide(StorageLive))

const cli = makeCli({
  serve: MainLive,
  migrate: Effect.provide(Effect.logInfo("migrations are up to date"), StorageLive)
})

/** A bad start prints one line per problem and exits non-zero, without a stack trace. */
const reportFailure = <A, E, R>(program: Effect.Effect<A, E, R>) =>
  Effect.tapErrorCause(program, (cause) => {
    const failure = Option.getOrUndefined(Cause.failureOption(cause))
    if (failure instanceof ConfigInvalid) return Console.error(failure.problems.map((p) => `error: ${p}`).join("\n"))
    if (ValidationError.isValidationError(failure)) return Effect.void // @effect/cli has printed the usage
    return Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("the service stopped on an unexpected error", cause)
  })

cli(process.argv).pipe(
  reportFailure,
  Effect.provide(LoggingLive),
  Effect.provide(EnvironmentLive()),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
