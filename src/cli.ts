import { Command } from "@effect/cli"
import { type Effect, Layer } from "effect"

export interface Programs<E, R> {
  /** The service: the API (and, later, the monitor) until interrupted. */
  readonly serve: Layer.Layer<never, E, R>
  /** Applies pending migrations and exits. */
  readonly migrate: Effect.Effect<void, E, R>
}

/** `serve | migrate`; `serve` is what `npm start` runs. */
export const makeCli = <E, R>(programs: Programs<E, R>) => {
  const serve = Command.make("serve", {}, () => Layer.launch(programs.serve)).pipe(
    Command.withDescription("Run the HTTP API")
  )
  const migrate = Command.make("migrate", {}, () => programs.migrate).pipe(
    Command.withDescription("Apply pending database migrations and exit")
  )
  const root = Command.make("oauth-integrations").pipe(
    Command.withDescription("OAuth integrations service"),
    Command.withSubcommands([serve, migrate])
  )
  return Command.run(root, { name: "oauth-integrations", version: "0.1.0" })
}
