import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Layer } from "effect"

/** The commands' programs; each may fail in its own way (hence one error type each). */
export interface Programs<EServe, EMonitor, EOnce, EMigrate, R> {
  /** The service: the API and, unless MONITOR_ENABLED=false, the token monitor, until interrupted. */
  readonly serve: Layer.Layer<never, EServe, R>
  /** The token monitor alone, until interrupted. */
  readonly monitor: Layer.Layer<never, EMonitor, R>
  /** One monitor pass; fails when a refresh failed for a reason other than needs_reauth. */
  readonly monitorOnce: Effect.Effect<void, EOnce, R>
  /** Applies pending migrations and exits. */
  readonly migrate: Effect.Effect<void, EMigrate, R>
}

/** `serve | monitor [--once] | migrate`; `serve` is what `npm start` runs. */
export const makeCli = <EServe, EMonitor, EOnce, EMigrate, R>(programs: Programs<EServe, EMonitor, EOnce, EMigrate, R>) => {
  const serve = Command.make("serve", {}, () => Layer.launch(programs.serve)).pipe(
    Command.withDescription("Run the HTTP API and the token monitor")
  )
  const once = Options.boolean("once").pipe(Options.withDescription("Run one pass and exit (non-zero if a refresh failed)"))
  const monitor = Command.make("monitor", { once }, ({ once }): Effect.Effect<void, EOnce | EMonitor, R> => once ? programs.monitorOnce : Layer.launch(programs.monitor)).pipe(
    Command.withDescription("Run the token monitor without the API")
  )
  const migrate = Command.make("migrate", {}, () => programs.migrate).pipe(
    Command.withDescription("Apply pending database migrations and exit")
  )
  const root = Command.make("oauth-integrations").pipe(
    Command.withDescription("OAuth integrations service"),
    Command.withSubcommands([serve, monitor, migrate])
  )
  return Command.run(root, { name: "oauth-integrations", version: "0.1.0" })
}

