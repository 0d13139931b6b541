import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Console, Data, Effect, Either, Layer, type Option, type Redacted } from "effect"
import { type CommandDoc, interpret, type OptionDoc, PROGRAM } from "./cliHelp.js"
import { packageVersion } from "./oauth/userAgent.js"

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

/** Arguments the command line refuses before any command runs; the message says what is allowed. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

const option = (name: string, description: string, extra: Partial<Pick<OptionDoc, "value" | "repeatable">> = {}): OptionDoc => ({ name, description, ...extra })

/** Each command and option, described once: for the parser and for the help. */
const docs = {
  once: option("--once", "Run one pass and exit; non-zero when a refresh failed for another reason than needs_reauth"),
  source: "A legacy SQLite database (default: alwrity.db when no --workspace is given)",
  workspace: option("--workspace", "A legacy workspace directory: every workspace_<id>/db/alwrity_<id>.db under it is read", { value: "dir" }),
  dryRun: option("--dry-run", "Read and report; write nothing"),
  platform: option("--platform", "Only this platform's table: gsc, bing, wordpress or wix", { value: "platform", repeatable: true }),
  fernetKey: option(
    "--fernet-key",
    "A Fernet key of the legacy WordPress.com and Wix token columns, beside WORDPRESS_TOKEN_ENCRYPTION_KEY, WIX_TOKEN_ENCRYPTION_KEY and OAUTH_TOKEN_ENCRYPTION_KEY",
    { value: "key", repeatable: true }
  ),
  verify: option("--verify", "Then refresh (or validate) each connection brought over once, and report per platform what still works"),
  keyStatus: option("--status", "Only print how many stored rows each key id seals (nothing is re-sealed)"),
  json: option("--json", "Print the report as JSON, for scripts"),
  url: option("--url", "Also ask the running instance at this URL for its circuit breakers (/health/providers)", { value: "url" })
}

/** Each command, by name: the parser's descriptions and the help's. */
const commands = {
  serve: { name: "serve", description: "Run the HTTP API and, unless MONITOR_ENABLED=false, the token monitor (what npm start runs)", options: [] },
  monitor: { name: "monitor", description: "Run the token monitor and the webhook deliveries without the API", options: [docs.once] },
  migrate: { name: "migrate", description: "Apply pending database migrations and exit (serve and monitor apply them too)", options: [] },
  backfill: {
    name: "backfill",
    args: "[<source>...]",
    description: "Bring the connections of the legacy SQLite databases in (read-only on them; a re-run imports nothing new)",
    options: [docs.workspace, docs.dryRun, docs.platform, docs.fernetKey, docs.verify]
  },
  rotateKeys: {
    name: "rotate-keys",
    description: "Re-seal every stored secret under the first key of TOKEN_ENCRYPTION_KEYS, online beside running replicas; a second run continues",
    options: [docs.keyStatus]
  },
  status: {
    name: "status",
    description: "Print connections per platform and status, those due within the hour, those failing, the last monitor pass and the pending webhook deliveries",
    options: [docs.json, docs.url]
  }
} satisfies Record<string, CommandDoc>

export const COMMANDS: ReadonlyArray<CommandDoc> = Object.values(commands)

/** An option's name as the parser takes it (`--once` → `once`). */
const flag = (option: OptionDoc) => option.name.slice(2)

/**
 * `serve | monitor [--once] | migrate | backfill | rotate-keys [--status] | status [--json] [--url]`;
 * `serve` is what `npm start` runs. Help, the version and arguments that cannot be right are
 * answered before the parser (see cliHelp.ts); the parser runs the command.
 */
export const makeCli = <EServe, EMonitor, EOnce, EMigrate, EBackfill, ERotate, EStatus, R>(
  programs: Programs<EServe, EMonitor, EOnce, EMigrate, EBackfill, ERotate, EStatus, R>
) => {
  const serve = Command.make(commands.serve.name, {}, () => Layer.launch(programs.serve)).pipe(Command.withDescription(commands.serve.description))
  const once = Options.boolean(flag(docs.once)).pipe(Options.withDescription(docs.once.description))
  const monitor = Command.make(commands.monitor.name, { once }, ({ once }): Effect.Effect<void, EOnce | EMonitor, R> => once ? programs.monitorOnce : Layer.launch(programs.monitor)).pipe(
    Command.withDescription(commands.monitor.description)
  )
  const migrate = Command.make(commands.migrate.name, {}, () => programs.migrate).pipe(Command.withDescription(commands.migrate.description))
  const backfill = Command.make(commands.backfill.name, {
    sources: Args.text({ name: "source" }).pipe(Args.withDescription(docs.source), Args.repeated),
    workspace: Options.directory(flag(docs.workspace), { exists: "yes" }).pipe(Options.withDescription(docs.workspace.description), Options.optional),
    dryRun: Options.boolean(flag(docs.dryRun)).pipe(Options.withDescription(docs.dryRun.description)),
    platforms: Options.choice(flag(docs.platform), ["gsc", "bing", "wordpress", "wix"]).pipe(Options.withDescription(docs.platform.description), Options.repeated),
    fernetKeys: Options.redacted(flag(docs.fernetKey)).pipe(Options.withDescription(docs.fernetKey.description), Options.repeated),
    verify: Options.boolean(flag(docs.verify)).pipe(Options.withDescription(docs.verify.description))
  }, (args) => programs.backfill(args)).pipe(Command.withDescription(commands.backfill.description))
  const rotateKeys = Command.make(commands.rotateKeys.name, {
    status: Options.boolean(flag(docs.keyStatus)).pipe(Options.withDescription(docs.keyStatus.description))
  }, (options) => programs.rotateKeys(options)).pipe(Command.withDescription(commands.rotateKeys.description))
  const status = Command.make(commands.status.name, {
    json: Options.boolean(flag(docs.json)).pipe(Options.withDescription(docs.json.description)),
    url: Options.text(flag(docs.url)).pipe(Options.withDescription(docs.url.description), Options.optional)
  }, (options) => programs.status(options)).pipe(Command.withDescription(commands.status.description))
  const root = Command.make(PROGRAM).pipe(
    Command.withDescription("OAuth integrations service"),
    Command.withSubcommands([serve, monitor, migrate, backfill, rotateKeys, status])
  )
  const run = Command.run(root, { name: PROGRAM, version: packageVersion })
  return (argv: ReadonlyArray<string>) =>
    Either.match(interpret(argv.slice(2), COMMANDS, packageVersion, process.stdout.isTTY === true), {
      onLeft: (message) => Effect.fail(new UsageError({ message })),
      onRight: (request) => (request._tag === "Help" ? Console.log(request.text.trimEnd()) : run(argv))
    })
}
