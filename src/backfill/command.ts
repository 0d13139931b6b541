import { Config, Console, Data, Effect, Either, Option, Redacted } from "effect"
import type { BackfillArgs } from "../cli.js"
import { ConfigInvalid } from "../config/ConfigInvalid.js"
import { type FernetKey, parseFernetKey } from "../crypto/fernet.js"
import { runBackfill } from "./Backfill.js"
import { makeTerminalReporter } from "./progress.js"
import { legacyFiles } from "./sources.js"

export class BackfillFailed extends Data.TaggedError("BackfillFailed")<{ readonly message: string }> {}

/** The legacy code's own variables: a platform's key, else the shared one. */
const platformKeyVariables: Readonly<Record<string, ReadonlyArray<string>>> = {
  wordpress: ["WORDPRESS_TOKEN_ENCRYPTION_KEY", "OAUTH_TOKEN_ENCRYPTION_KEY"],
  wix: ["WIX_TOKEN_ENCRYPTION_KEY", "OAUTH_TOKEN_ENCRYPTION_KEY"]
}

/** Every configured Fernet key, read and checked; a malformed one stops the command naming where it came from. */
const fernetKeysOf = (given: ReadonlyArray<Redacted.Redacted>) =>
  Effect.gen(function*() {
    const problems: Array<string> = []
    const parse = (where: string, value: Redacted.Redacted) =>
      Either.match(parseFernetKey(Redacted.value(value)), {
        onLeft: (why) => {
          problems.push(`${where}: ${why}`)
          return []
        },
        onRight: (key) => [key]
      })
    const fromOptions = given.flatMap((key, i) => parse(`--fernet-key (${i + 1})`, key))
    const names = [...new Set(Object.values(platformKeyVariables).flat())]
    const fromEnv = new Map<string, ReadonlyArray<FernetKey>>()
    for (const name of names) {
      const value = yield* Config.option(Config.redacted(name))
      fromEnv.set(name, Option.match(value, { onNone: () => [], onSome: (v) => parse(name, v) }))
    }
    if (problems.length > 0) return yield* new ConfigInvalid({ problems })
    return (platform: string): ReadonlyArray<FernetKey> => [
      ...fromOptions,
      ...(platformKeyVariables[platform] ?? []).flatMap((name) => fromEnv.get(name) ?? [])
    ]
  })

/** `backfill`: the legacy databases' connections brought in, with progress on stderr and the summary on stdout. */
export const backfillCommand = (args: BackfillArgs) =>
  Effect.gen(function*() {
    const fernetKeys = yield* fernetKeysOf(args.fernetKeys)
    const files = yield* Effect.try({
      try: () => legacyFiles(args.sources, Option.getOrUndefined(args.workspace)),
      catch: () => new BackfillFailed({ message: "the workspace directory cannot be read" })
    })
    if (files.length === 0) return yield* new BackfillFailed({ message: "no legacy database found under the workspace directory" })
    const { finish, reporter } = yield* makeTerminalReporter()
    const report = yield* runBackfill({ files, dryRun: args.dryRun, platforms: args.platforms, fernetKeys, verify: args.verify }, reporter)
    yield* finish
    yield* Console.log(report.summary)
    if (report.failed) return yield* new BackfillFailed({ message: "some rows or files failed (see above); the others were brought in, and a re-run takes up where this one failed" })
  })
