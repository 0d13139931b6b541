import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Layer, type Option, type Redacted } from "effect"

/** What `backfill` was asked to do. */
export interface BackfillArgs {
  readonly sources: ReadonlyArray<string>
  readonly workspace: Option.Option<string>
  readonly dryRun: boolean
  readonly platforms: ReadonlyArray<string>
  readonly fernetKeys: ReadonlyArray<Redacted.Redacted>
  readonly verify: boolean
}

/** The commands' programs; each may fail in its own way (hence one error type each). */
export interface Programs<EServe, EMonitor, EOnce, EMigrate, EBackfill, ERotate, EStatus, R> {
  /** The service: the API and, unless MONITOR_ENABLED=false, the token monitor, until interrupted. */
  readonly serve: Layer.Layer<never, EServe, R>
  /** The token monitor alone, until interrupted. */
  readonly monitor: Layer.Layer<never, EMonitor, R>
  /** One monitor pass; fails when a refresh failed for a reason other than needs_reauth. */
  readonly monitorOnce: Effect.Effect<void, EOnce, R>
  /** Applies pending migrations and exits. */
  readonly migrate: Effect.Effect<void, EMigrate, R>
  /** Brings the legacy SQLite databases' connections in; fails when a row or a file failed. */
  readonly backfill: (args: BackfillArgs) => Effect.Effect<void, EBackfill, R>
  /** Re-seals every stored secret under the current key; with `status`, only prints the rows per key id. */
  readonly rotateKeys: (options: { readonly status: boolean }) => Effect.Effect<void, ERotate, R>
  /** Prints the state of the connections, the monitor and the webhooks from the database. */
  readonly status: (options: { readonly json: boolean; readonly url: Option.Option<string> }) => Effect.Effect<void, EStatus, R>
}

/** `serve | monitor [--once] | migrate | backfill | rotate-keys [--status] | status [--json] [--url]`; `serve` is what `npm start` runs. */
export const makeCli = <EServe, EMonitor, EOnce, EMigrate, EBackfill, ERotate, EStatus, R>(
  programs: Programs<EServe, EMonitor, EOnce, EMigrate, EBackfill, ERotate, EStatus, R>
) => {
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
  const backfill = Command.make("backfill", {
    sources: Args.text({ name: "source" }).pipe(
      Args.withDescription("A legacy SQLite database (default: alwrity.db when no --workspace is given)"),
      Args.repeated
    ),
    workspace: Options.directory("workspace", { exists: "yes" }).pipe(
      Options.withDescription("A legacy workspace directory: every workspace_<id>/db/alwrity_<id>.db under it is read"),
      Options.optional
    ),
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("Read and report; write nothing")),
    platforms: Options.choice("platform", ["gsc", "bing", "wordpress", "wix"]).pipe(
      Options.withDescription("Only this platform's table (repeat for several)"),
      Options.repeated
    ),
    fernetKeys: Options.redacted("fernet-key").pipe(
      Options.withDescription("A Fernet key of the legacy WordPress.com and Wix token columns, beside WORDPRESS_TOKEN_ENCRYPTION_KEY, WIX_TOKEN_ENCRYPTION_KEY and OAUTH_TOKEN_ENCRYPTION_KEY"),
      Options.repeated
    ),
    verify: Options.boolean("verify").pipe(
      Options.withDescription("Then refresh (or validate) each connection brought over once, and report per platform what still works")
    )
  }, (args) => programs.backfill(args)).pipe(
    Command.withDescription("Bring the connections of the legacy SQLite databases in (read-only on them; a re-run imports nothing new)")
  )
  const rotateKeys = Command.make("rotate-keys", {
    status: Options.boolean("status").pipe(Options.withDescription("Only print how many stored rows each key id seals"))
  }, (options) => programs.rotateKeys(options)).pipe(
    Command.withDescription(
      "Re-seal every stored secret under the first key of TOKEN_ENCRYPTION_KEYS, online beside running replicas; a second run continues"
    )
  )
  const status = Command.make("status", {
    json: Options.boolean("json").pipe(Options.withDescription("Print the report as JSON, for scripts")),
    url: Options.text("url").pipe(
      Options.withDescription("Also ask the running instance at this URL for its circuit breakers (/health/providers)"),
      Options.optional
    )
  }, (options) => programs.status(options)).pipe(
    Command.withDescription(
      "Print connections per platform and status, those due within the hour, those failing, the last monitor pass and the pending webhook deliveries"
    )
  )
  const root = Command.make("oauth-integrations").pipe(
    Command.withDescription("OAuth integrations service"),
    Command.withSubcommands([serve, monitor, migrate, backfill, rotateKeys, status])
  )
  return Command.run(root, { name: "oauth-integrations", version: "0.1.0" })
}

