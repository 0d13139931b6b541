import { Config, Effect, Layer, Logger, LogLevel, Option } from "effect"
import { DeployEnvConfig, isDevelopment } from "./config/DeployEnv.js"

/**
 * The logger: pretty in development, one JSON object per line elsewhere (LOG_FORMAT
 * overrides), at LOG_LEVEL. Invalid values fall back to the defaults here; AppConfig
 * reports them.
 */
export const LoggingLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const env = yield* DeployEnvConfig.pipe(Config.option)
    const format = yield* Config.literal("pretty", "json")("LOG_FORMAT").pipe(Config.option)
    const level = yield* Config.logLevel("LOG_LEVEL").pipe(Config.option)
    const dev = Option.match(env, { onNone: () => true, onSome: isDevelopment })
    const logger = Option.getOrElse(format, () => (dev ? "pretty" : "json")) === "json" ? Logger.json : Logger.pretty
    return Layer.merge(logger, Logger.minimumLogLevel(Option.getOrElse(level, () => LogLevel.Info)))
  }).pipe(Effect.orElseSucceed(() => Logger.pretty))
)
