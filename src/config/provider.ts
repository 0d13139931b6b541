import { existsSync, readFileSync } from "node:fs"
import { parseEnv } from "node:util"
import { ConfigProvider, Layer } from "effect"

/**
 * The environment, over the variables of a .env file when there is one. A variable set
 * to the empty string counts as unset, so a copied .env.example with blanks starts.
 */
export const environmentProvider = (
  env: Record<string, string | undefined>,
  dotenvPath: string
): ConfigProvider.ConfigProvider => {
  const fromFile = existsSync(dotenvPath) ? parseEnv(readFileSync(dotenvPath, "utf8")) : {}
  const merged = new Map<string, string>()
  for (const [name, value] of [...Object.entries(fromFile), ...Object.entries(env)]) {
    if (value !== undefined && value.trim() !== "") merged.set(name, value)
    else if (value !== undefined) merged.delete(name)
  }
  return ConfigProvider.fromMap(merged)
}

export const EnvironmentLive = (dotenvPath = ".env") =>
  Layer.setConfigProvider(environmentProvider(process.env, dotenvPath))
