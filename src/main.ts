import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { defaultTeardown } from "@effect/platform/Runtime"
import { Cause, Console, Data, Duration, Effect, Layer, Option } from "effect"
import { makeCli } from "./cli.js"
import { AppConfig, AppConfigLive, ConfigInvalid, WorkerConfigLive } from "./config/AppConfig.js"
import { explainListenFailure } from "./config/listen.js"
import { warnMisconfiguredPlatforms } from "./config/platformWarnings.js"
import { EnvironmentLive } from "./config/provider.js"
import { DatabaseLive } from "./db/Database.js"
import { DatabaseUnavailable } from "./domain/errors.js"
import { LoggingLive } from "./logging.js"
import { MonitorLive, TokenMonitor } from "./monitor/TokenMonitor.js"
import { ServicesLive } from "./services.js"

/** Configuration, then PostgreSQL (server or embedded) with migrations applied. */
export const StorageLive = DatabaseLive.pipe(Layer.provideMerge(AppConfigLive))

/** The same for the commands that serve no API: they neither generate nor print an API key. */
const WorkerStorageLive = DatabaseLive.pipe(Layer.provideMerge(WorkerConfigLive))

/** The API, loaded only by the commands that serve it (the monitor alone needs less memory). */
const HttpLazyLive = explainListenFailure(Layer.unwrapEffect(
  Effect.promise(() => import("./http/server.js")).pipe(Effect.map((http) => http.HttpLive.pipe(Layer.provide(http.StatusCacheLive))))
))

const PlatformWarningsLive = Layer.effectDiscard(warnMisconfiguredPlatforms)

/** The whole service: the API and the token monitor over the services, over storage. */
export const MainLive = Layer.mergeAll(
  PlatformWarningsLive,
  HttpLazyLive,
  MonitorLive.pipe(Layer.provide(TokenMonitor.Default))
).pipe(Layer.provide(ServicesLive), Layer.provide(StorageLive))

/** `monitor` runs the monitor whatever MONITOR_ENABLED says: that flag is about the monitor beside the API. */
const MonitorAloneLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const { monitor: settings } = yield* AppConfig
    const monitor = yield* TokenMonitor
    yield* Effect.forkScoped(monitor.run)
    yield* Effect.logInfo(`token monitor started: every ${Duration.format(settings.interval)}, refreshing ${Duration.format(settings.refreshAhead)} ahead`)
  })
)

const MonitorOnlyLive = Layer.merge(PlatformWarningsLive, MonitorAloneLive).pipe(
  Layer.provide(TokenMonitor.Default),
  Layer.provide(ServicesLive),
  Layer.provide(WorkerStorageLive)
)

class MonitorPassFailed extends Data.TaggedError("MonitorPassFailed")<{ readonly failed: number }> {}

const monitorOnce = Effect.gen(function*() {
  yield* warnMisconfiguredPlatforms
  const monitor = yield* TokenMonitor
  const report = yield* monitor.tick
  const failed = monitor.failuresOf(report)
  if (failed > 0) return yield* new MonitorPassFailed({ failed })
}).pipe(Effect.provide(TokenMonitor.Default), Effect.provide(ServicesLive), Effect.provide(WorkerStorageLive))

const cli = makeCli({
  serve: MainLive,
  monitor: MonitorOnlyLive,
  monitorOnce,
  migrate: Effect.provide(Effect.logInfo("migrations are up to date"), WorkerStorageLive)
})

/** A bad start prints one line per problem and exits non-zero, without a stack trace. */
const reportFailure = <A, E, R>(program: Effect.Effect<A, E, R>) =>
  Effect.tapErrorCause(program, (cause) => {
    const failure = Option.getOrUndefined(Cause.failureOption(cause))
    if (failure instanceof ConfigInvalid) return Console.error(failure.problems.map((p) => `error: ${p}`).join("\n"))
    if (ValidationError.isValidationError(failure)) return Effect.void // @effect/cli has printed the usage
    if (failure instanceof MonitorPassFailed) return Console.error(`error: ${failure.failed} refresh(es) failed in this pass`)
    if (failure instanceof DatabaseUnavailable) return Console.error(`error: ${failure.message}`)
    return Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("the service stopped on an unexpected error", cause)
  })

cli(process.argv).pipe(
  reportFailure,
  // No span exporter is configured: spans (per statement, per platform call) would cost without being read.
  Effect.withTracerEnabled(false),
  Effect.provide(LoggingLive),
  Effect.provide(EnvironmentLive()),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    disablePrettyLogger: true,
    // Exit when the command is done, even if something (an open stdin) would keep Node alive.
    teardown: (exit, onExit) => defaultTeardown(exit, (code) => {
      onExit(code)
      process.exit(code)
    })
  })
)
