import { Cause, Config, Effect, HashMap, Inspectable, Layer, List, Logger, LogLevel, Option } from "effect"
import { DeployEnvConfig, isDevelopment } from "./config/DeployEnv.js"

const COLOURS: Readonly<Record<string, string>> = { FATAL: "35", ERROR: "31", WARN: "33", INFO: "32", DEBUG: "36", TRACE: "90" }

/** A value as one token of a line: a string bare unless it holds a space, a quote or `=` (then quoted); anything else as compact JSON. */
const token = (value: unknown): string => {
  if (typeof value !== "string") return Inspectable.stringifyCircular(value)
  return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)
}

/**
 * Development's log line: `12:00:00.000 INFO  message key=value …`, one line per entry with
 * the annotations sorted by name (a fixed order, whatever order they were added in) and the
 * log spans last; a cause follows on the lines below. Colour only on a terminal.
 */
export const lineLogger = (tty: boolean) =>
  Logger.make(({ annotations, cause, date, logLevel, message, spans }) => {
    const level = logLevel.label
    const time = `${String(date.getHours()).padStart(2, "0")}:${String(date.getMinutes()).padStart(2, "0")}:${String(date.getSeconds()).padStart(2, "0")}.${
      String(date.getMilliseconds()).padStart(3, "0")
    }`
    const text = (Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : m instanceof Error ? `${m.name}: ${m.message}` : Inspectable.stringifyCircular(m))).join(" ")
    const fields = Array.from(HashMap.toEntries(annotations))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, value]) => `${key}=${token(value)}`)
    const now = date.getTime()
    for (const span of List.toArray(spans)) fields.push(`${span.label}=${now - span.startTime}ms`)
    const shown = tty ? `\u001b[${COLOURS[level] ?? "0"}m${level.padEnd(5)}\u001b[0m` : level.padEnd(5)
    const line = [`${time} ${shown} ${text}`, ...fields].join(" ")
    globalThis.console.log(Cause.isEmpty(cause) ? line : `${line}\n${Cause.pretty(cause, { renderErrorCause: true })}`)
  })

/** Development's logger in place of Effect's default one. */
const lineLoggerLive = Logger.replace(Logger.defaultLogger, lineLogger(process.stdout.isTTY === true))

/**
 * The logger: a line per entry in development (lineLogger), one JSON object per line elsewhere (LOG_FORMAT
 * overrides), at LOG_LEVEL. Invalid values fall back to the defaults here; AppConfig
 * reports them.
 */
export const LoggingLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const env = yield* DeployEnvConfig.pipe(Config.option)
    const format = yield* Config.literal("pretty", "json")("LOG_FORMAT").pipe(Config.option)
    const level = yield* Config.logLevel("LOG_LEVEL").pipe(Config.option)
    const dev = Option.match(env, { onNone: () => true, onSome: isDevelopment })
    const logger = Option.getOrElse(format, () => (dev ? "pretty" : "json")) === "json" ? Logger.json : lineLoggerLive
    return Layer.merge(logger, Logger.minimumLogLevel(Option.getOrElse(level, () => LogLevel.Info)))
  }).pipe(Effect.orElseSucceed(() => lineLoggerLive))
)
