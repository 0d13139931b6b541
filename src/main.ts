import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { defaultTeardown } from "@effect/platform/Runtime"
import { Cause, Console, Data, Effect, Layer, Option } from "effect"
import type { BackfillFailed } from "./backfill/command.js"
import { makeCli, UsageError } from "./cli.js"
import { AppConfigLive, WorkerConfigLive } from "./config/AppConfig.js"
import { ConfigInvalid } from "./config/ConfigInvalid.js"
import { explainListenFailure } from "./config/listen.js"
import { warnMisconfiguredPlatforms } from "./registry/ProviderRegistry.js"
import { warnUnencryptedDatabase } from "./config/databaseWarnings.js"
import { warnConfirmationOff } from "./config/securityWarnings.js"
import { EnvironmentLive } from "./config/provider.js"
import { DatabaseLive } from "./db/Database.js"
import { StoredKeysCheckLive } from "./db/storedKeys.js"
import { DatabaseUnavailable } from "./domain/errors.js"
import { CleanupLive } from "./integrations/Cleanup.js"
import { LoggingLive } from "./logging.js"
import { withTracing } from "./observability/tracing.js"
import { makeRunMainKeepingSignals } from "./runtime.js"
import { monitorLayer, MonitorLive, TokenMonitor } from "./monitor/TokenMonitor.js"
import { KeyRotation } from "./db/KeyRotation.js"
import { MonitorPassRepository } from "./db/MonitorPassRepository.js"
import { WebhookRepository } from "./db/WebhookRepository.js"
import { ServicesLive } from "./services.js"
import { WebhooksLive } from "./webhooks/DeliveryWorker.js"

/**
 * Configuration, then PostgreSQL (server or embedded) with migrations applied, then the check
 * that every key sealing stored tokens is configured.
 */
export const StorageLive = StoredKeysCheckLive.pipe(Layer.provideMerge(DatabaseLive), Layer.provideMerge(AppConfigLive))

/** Migrations alone, for `migrate`: it reads no token. It neither generates nor prints an API key. */
const MigrationStorageLive = DatabaseLive.pipe(Layer.provideMerge(WorkerConfigLive))

/** The commands that serve no API (the monitor): checked storage, and no API key generated or printed. */
const WorkerStorageLive = StoredKeysCheckLive.pipe(Layer.provideMerge(MigrationStorageLive))

/**
 * Built before everything else, so released after everything else: its line says the service
 * has stopped once the API, the monitor, the pool and the embedded database have.
 */
const StoppedLineLive = Layer.scopedDiscard(Effect.addFinalizer(() => Effect.logInfo("stopped")))

/** The API, loaded only by the commands that serve it (the monitor alone needs less memory). */
const HttpLazyLive = explainListenFailure(Layer.unwrapEffect(
  Effect.promise(() => import("./http/server.js")).pipe(Effect.map((http) => http.HttpLive))
))

/** Settings that start but deserve a word: misconfigured platforms, confirmation off, a database reached without TLS. */
const PlatformWarningsLive = Layer.effectDiscard(Effect.all([warnMisconfiguredPlatforms, warnConfirmationOff, warnUnencryptedDatabase], { discard: true }))

/**
 * The whole service: the API, the token monitor, the cleanup and the webhook deliveries over the services, over
 * storage. The API's socket is bound before the monitor starts: a port in use stops the start
 * before any platform is called.
 */
export const MainLive = Layer.mergeAll(MonitorLive, CleanupLive, WebhooksLive).pipe(
  Layer.provide(HttpLazyLive),
  Layer.provide(PlatformWarningsLive),
  Layer.provide(ServicesLive),
  Layer.provide(StorageLive),
  Layer.provide(StoppedLineLive)
)

/** `monitor` runs the monitor whatever MONITOR_ENABLED says: that flag is about the monitor beside the API. */
const MonitorAloneLive = monitorLayer({ always: true })

const MonitorOnlyLive = Layer.mergeAll(PlatformWarningsLive, MonitorAloneLive, CleanupLive, WebhooksLive).pipe(
  Layer.provide(ServicesLive),
  Layer.provide(WorkerStorageLive),
  Layer.provide(StoppedLineLive)
)

class MonitorPassFailed extends Data.TaggedError("MonitorPassFailed")<{ readonly failed: number }> {}

const monitorOnce = Effect.gen(function*() {
  yield* warnMisconfiguredPlatforms
  const monitor = yield* TokenMonitor
  const report = yield* monitor.tick
  const failed = monitor.failuresOf(report)
  if (failed > 0) return yield* new MonitorPassFailed({ failed })
}).pipe(Effect.provide(ServicesLive.pipe(Layer.provide(WorkerStorageLive))))

const cli = makeCli({
  serve: MainLive,
  monitor: MonitorOnlyLive,
  monitorOnce,
  // Loaded only by `backfill`: the SQLite driver is no other command's weight.
  backfill: (args) =>
    Effect.promise(() => import("./backfill/command.js")).pipe(
      Effect.flatMap((backfill) => backfill.backfillCommand(args)),
      Effect.provide(ServicesLive.pipe(Layer.provide(WorkerStorageLive)))
    ),
  migrate: Effect.provide(Effect.logInfo("migrations are up to date"), MigrationStorageLive),
  status: (options) =>
    Effect.promise(() => import("./ops/status.js")).pipe(
      Effect.flatMap((ops) => ops.statusCommand(options)),
      Effect.provide(Layer.mergeAll(MonitorPassRepository.Default, WebhookRepository.Default).pipe(Layer.provideMerge(MigrationStorageLive)))
    ),
  rotateKeys: ({ status }) =>
    Effect.promise(() => import("./keys/command.js")).pipe(
      Effect.flatMap((keys) => (status ? keys.keyStatus : keys.rotateKeys)),
      Effect.provide(KeyRotation.Default.pipe(Layer.provideMerge(WorkerStorageLive)))
    )
})

/** A failure of a lazily loaded command, known by its tag (its class is not loaded here). */
const isTagged = (failure: unknown, tag: string): failure is { readonly message: string } =>
  typeof failure === "object" && failure !== null && "_tag" in failure && failure._tag === tag

const isBackfillFailed = (failure: unknown): failure is BackfillFailed =>
  typeof failure === "object" && failure !== null && "_tag" in failure && failure._tag === "BackfillFailed"

/** A bad start prints one line per problem and exits non-zero, without a stack trace. */
const reportFailure = <A, E, R>(program: Effect.Effect<A, E, R>) =>
  Effect.tapErrorCause(program, (cause) => {
    const failure = Option.getOrUndefined(Cause.failureOption(cause))
    if (failure instanceof ConfigInvalid) return Console.error(failure.problems.map((p) => `error: ${p}`).join("\n"))
    if (ValidationError.isValidationError(failure)) return Effect.void // @effect/cli has printed the usage
    if (failure instanceof UsageError) return Console.error(`error: ${failure.message}`)
    if (failure instanceof MonitorPassFailed) return Console.error(`error: ${failure.failed} refresh(es) failed in this pass`)
    if (failure instanceof DatabaseUnavailable || isBackfillFailed(failure) || isTagged(failure, "RotationIncomplete") || isTagged(failure, "InstanceUnreachable")) {
      return Console.error(`error: ${failure.message}`)
    }
    return Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("the service stopped on an unexpected error", cause)
  })

/** What each SIGINT/SIGTERM is told: the first stops the service, the ones after it are absorbed. */
const announceSignal = (signal: NodeJS.Signals, rank: number) =>
  Effect.runFork(
    (rank === 1
      ? Effect.logInfo(`${signal}: stopping; the platform calls in flight finish and their answers are stored first`)
      : Effect.logInfo(`${signal} again: already stopping (SIGKILL stops at once, losing the answers in flight)`)).pipe(
        Effect.provide(LoggingLive),
        Effect.provide(EnvironmentLive())
      )
  )

cli(process.argv).pipe(
  reportFailure,
  // Spans exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise the tracer is off.
  withTracing,
  Effect.provide(LoggingLive),
  Effect.provide(EnvironmentLive()),
  Effect.provide(NodeContext.layer),
  makeRunMainKeepingSignals(announceSignal)({
    disableErrorReporting: true,
    disablePrettyLogger: true,
    // Exit when the command is done, even if something (an open stdin) would keep Node alive.
    teardown: (exit, onExit) => defaultTeardown(exit, (code) => {
      onExit(code)
      process.exit(code)
    })
  })
)
