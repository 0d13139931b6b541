import { Either } from "effect"

/** One option of a command, as its help shows it. */
export interface OptionDoc {
  /** `--name`, and the placeholder of its value if it takes one. */
  readonly name: string
  readonly value?: string
  readonly repeatable?: boolean
  readonly description: string
}

/** One command, as the help shows it. */
export interface CommandDoc {
  readonly name: string
  /** Positional arguments after the options, as the usage line shows them. */
  readonly args?: string
  readonly description: string
  readonly options: ReadonlyArray<OptionDoc>
}

export const PROGRAM = "oauth-integrations"

/** The options @effect/cli would otherwise offer: each is refused, and some said instead. */
const REFUSED: Readonly<Record<string, string>> = {
  "--log-level": "set LOG_LEVEL instead (trace, debug, info, warn, error, fatal, all or off)",
  "--wizard": `see ${PROGRAM} --help`,
  "--completions": `see ${PROGRAM} --help`
}

/** `--name`, with `<value>` when it takes one. */
const optionText = (option: OptionDoc) => `${option.name}${option.value === undefined ? "" : ` <${option.value}>`}`

const optionUsage = (option: OptionDoc) => `[${optionText(option)}]${option.repeatable === true ? "..." : ""}`

const usageOf = (command: CommandDoc) =>
  [PROGRAM, command.name, ...command.options.map(optionUsage), ...(command.args === undefined ? [] : [command.args])].join(" ")

/** Bold on a terminal, plain text elsewhere (a pipe, a file, a CI log). */
const heading = (text: string, tty: boolean) => (tty ? `\u001b[1m${text}\u001b[0m` : text)

const WIDTH = 100

/** The words of `text` in lines of at most `width` characters. */
const wrap = (text: string, width: number): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === "" ? word : `${line} ${word}`
    }
  }
  lines.push(line)
  return lines
}

/** Two columns: the left padded to its widest entry, the right wrapped under itself. */
const columns = (rows: ReadonlyArray<readonly [string, string]>) => {
  const left = Math.max(...rows.map(([l]) => l.length)) + 2
  return rows.map(([l, r]) => wrap(r, WIDTH - left - 2).map((text, i) => `  ${(i === 0 ? l : "").padEnd(left)}${text}`).join("\n")).join("\n")
}

/** The whole command line's help. */
export const rootHelp = (commands: ReadonlyArray<CommandDoc>, version: string, tty: boolean) =>
  [
    `${PROGRAM} ${version}: connects users' accounts on other platforms and keeps their tokens fresh`,
    "",
    `${heading("Usage:", tty)} ${PROGRAM} <command> [options]`,
    "",
    heading("Commands:", tty),
    columns(commands.map((c) => [c.name, c.description])),
    "",
    heading("Options:", tty),
    columns([["-h, --help", "Show this help, or a command's with <command> --help"], ["--version", "Show the version"]]),
    "",
    "Configuration is read from the environment and from .env (see the README's Configuration section);",
    "the log level is LOG_LEVEL's, the log format LOG_FORMAT's.",
    ""
  ].join("\n")

/** One command's help: its usage line, what it does, and each option. */
export const commandHelp = (command: CommandDoc, tty: boolean) =>
  [
    `${heading("Usage:", tty)} ${usageOf(command)}`,
    "",
    ...wrap(command.description, WIDTH),
    "",
    heading("Options:", tty),
    columns([
      ...command.options.map((o): readonly [string, string] => [optionText(o), `${o.description}${o.repeatable === true ? " (may be repeated)" : ""}`]),
      ["-h, --help", "Show this help"]
    ]),
    ""
  ].join("\n")

/** What the command line asks for before any command runs. */
export type Request =
  | { readonly _tag: "Help"; readonly text: string }
  | { readonly _tag: "Run" }

/**
 * Reads the arguments (after `node main.js`): help and the version are answered here, in
 * our words; a command, an option or a value that cannot be right is refused here, naming
 * what is allowed; anything else is left to the command's parser.
 */
export const interpret = (
  args: ReadonlyArray<string>,
  commands: ReadonlyArray<CommandDoc>,
  version: string,
  tty: boolean
): Either.Either<Request, string> => {
  const names = commands.map((c) => c.name)
  const first = args[0]
  if (first === undefined || first === "-h" || first === "--help") return Either.right({ _tag: "Help", text: rootHelp(commands, version, tty) })
  if (first === "--version") return Either.right({ _tag: "Help", text: `${PROGRAM} ${version}\n` })
  if (first === "help") {
    const topic = args[1]
    if (topic === undefined) return Either.right({ _tag: "Help", text: rootHelp(commands, version, tty) })
    const command = commands.find((c) => c.name === topic)
    return command === undefined
      ? Either.left(`unknown command '${topic}': the commands are ${names.join(", ")}; run ${PROGRAM} --help`)
      : Either.right({ _tag: "Help", text: commandHelp(command, tty) })
  }
  const command = commands.find((c) => c.name === first)
  if (command === undefined) {
    const refused = REFUSED[first.split("=")[0] ?? ""]
    if (refused !== undefined) return Either.left(`${first.split("=")[0]} is not an option of ${PROGRAM}: ${refused}`)
    return Either.left(`unknown command '${first}': the commands are ${names.join(", ")}; run ${PROGRAM} --help`)
  }
  const rest = args.slice(1)
  const see = `run ${PROGRAM} ${command.name} --help`
  if (rest.includes("-h") || rest.includes("--help")) return Either.right({ _tag: "Help", text: commandHelp(command, tty) })
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!
    if (!arg.startsWith("-")) continue
    const name = arg.split("=")[0]!
    const option = command.options.find((o) => o.name === name)
    if (option === undefined) {
      const refused = REFUSED[name]
      if (refused !== undefined) return Either.left(`${name} is not an option of ${PROGRAM}: ${refused}`)
      const known = command.options.map((o) => o.name)
      return Either.left(
        known.length === 0
          ? `${command.name} takes no option (${arg} was given)`
          : `unknown option ${name} for ${command.name}: its options are ${known.join(", ")}; ${see}`
      )
    }
    if (option.value === undefined && arg.includes("=")) return Either.left(`${name} takes no value (${arg} was given); ${see}`)
    // An option's value is the next argument (or after `=`): skipped, whatever it looks like.
    if (option.value !== undefined && !arg.includes("=")) {
      if (i + 1 >= rest.length) return Either.left(`${name} needs a value: ${name} <${option.value}>; ${see}`)
      i++
    }
  }
  return Either.right({ _tag: "Run" })
}
