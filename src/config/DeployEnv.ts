import { Config, ConfigError, Either } from "effect"

export type DeployEnv = "development" | "staging" | "production"

const aliases: Record<string, DeployEnv> = {
  development: "development",
  dev: "development",
  local: "development",
  staging: "staging",
  stage: "staging",
  production: "production",
  prod: "production"
}

export const parseDeployEnv = (raw: string): Either.Either<DeployEnv, string> => {
  const env = aliases[raw.trim().toLowerCase()]
  return env === undefined
    ? Either.left("must be one of development, staging, production (dev, local, stage, prod accepted)")
    : Either.right(env)
}

export const DeployEnvConfig: Config.Config<DeployEnv> = Config.nested(
  Config.string().pipe(
    Config.withDefault("development"),
    Config.mapOrFail((raw) => Either.mapLeft(parseDeployEnv(raw), (rule) => ConfigError.InvalidData([], rule)))
  ),
  "DEPLOY_ENV"
)

export const isDevelopment = (env: DeployEnv): boolean => env === "development"
