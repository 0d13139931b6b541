import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { parseEnv } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Schema } from "effect"
import { parse } from "yaml"
import { loadSettings } from "../../src/config/AppConfig.js"
import { scratchDirectory } from "../support/processes.js"

const Compose = Schema.Struct({
  services: Schema.Struct({
    service: Schema.Struct({
      env_file: Schema.String,
      environment: Schema.Record({ key: Schema.String, value: Schema.String }),
      volumes: Schema.optional(Schema.Array(Schema.String)),
      healthcheck: Schema.Struct({ test: Schema.Array(Schema.String) })
    })
  })
})

const compose = Schema.decodeUnknownSync(Compose)(parse(readFileSync("docker-compose.yml", "utf8")))
const service = compose.services.service
const example = parseEnv(readFileSync(".env.example", "utf8"))

/**
 * What compose hands the container from `.env` and `environment:`, the way compose does it:
 * `environment:` wins over env_file, `${NAME:?message}` is NAME from .env and stops compose
 * when NAME is unset or empty, `${NAME}` is NAME or empty.
 */
const composeEnvironment = (dotenv: Readonly<Record<string, string | undefined>>) => {
  const missing: Array<string> = []
  const interpolated = Object.fromEntries(Object.entries(service.environment).map(([name, value]) => [
    name,
    value.replace(/\$\{([A-Z0-9_]+)(?::\?([^}]*))?\}/g, (_, variable: string, message: string | undefined) => {
      const found = dotenv[variable] ?? ""
      if (found === "" && message !== undefined) missing.push(`${variable}: ${message}`)
      return found
    })
  ]))
  return { environment: { ...dotenv, ...interpolated }, missing }
}

describe("docker compose from .env.example", () => {
  it("checks the service's health with what the image has (node), against GET /health on the port it serves", () => {
    const [kind, command, flag, script] = service.healthcheck.test
    expect([kind, command, flag]).toEqual(["CMD", "node", "-e"])
    expect(script).toContain(`http://127.0.0.1:${service.environment["PORT"]}/health`)
    expect(script).toContain("process.exit(r.ok ? 0 : 1)")
  })

  it("refuses to start until the secrets and FRONTEND_URL are set in .env, naming each", () => {
    const { missing } = composeEnvironment(example)
    expect(missing.map((m) => m.split(":")[0])).toEqual(["TOKEN_ENCRYPTION_KEYS", "API_KEYS", "FRONTEND_URL"])
    expect(missing.every((m) => m.includes("set ") && m.includes(" in .env"))).toBe(true)
  })

  it("runs the service in production whatever .env says, so no development secret is ever generated in the container", () => {
    expect(example["DEPLOY_ENV"]).toBe("development")
    const { environment } = composeEnvironment(example)
    expect(environment["DEPLOY_ENV"]).toBe("production")
  })

  it.effect("the service itself, given compose's environment from an untouched .env.example, refuses to start and writes no secrets file", () =>
    Effect.gen(function*() {
      const secrets = join(scratchDirectory(), "dev-secrets.json")
      const { environment } = composeEnvironment({ ...example, DEV_SECRETS_FILE: secrets })
      const entries = Object.entries(environment).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== "")
      const problems = yield* Effect.flip(loadSettings({ servesApi: true })).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries))),
        Effect.map((e) => e.problems)
      )
      expect(problems).toEqual(expect.arrayContaining([
        "FRONTEND_URL: is required outside development",
        "TOKEN_ENCRYPTION_KEYS: is required outside development (kid:base64 of 32 random bytes)",
        "API_KEYS: is required outside development"
      ]))
      expect(existsSync(secrets)).toBe(false)
    }))

  it.effect("with the secrets filled in, it starts in production with them", () =>
    Effect.gen(function*() {
      const key = `k1:${Buffer.alloc(32, 7).toString("base64")}`
      const { environment, missing } = composeEnvironment({
        ...example,
        TOKEN_ENCRYPTION_KEYS: key,
        API_KEYS: "QWIN0IRQNrXLw1Gadc9SKBblbshRnAJhBbLM1C3iP_s",
        FRONTEND_URL: "https://app.example.com"
      })
      expect(missing).toEqual([])
      const entries = Object.entries(environment).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== "")
      const settings = yield* loadSettings({ servesApi: true }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries))))
      expect(settings.deployEnv).toBe("production")
      expect(settings.encryptionKeys.map((k) => k.id)).toEqual(["k1"])
      expect(settings.host).toBe("0.0.0.0")
    }))

  it("keeps no data in the container: PostgreSQL's on a named volume, and no directory of the service's own", () => {
    expect(service.volumes ?? []).toEqual([])
    expect(readFileSync("Dockerfile", "utf8")).not.toMatch(/\.data/)
    expect(readFileSync("docker-compose.yml", "utf8")).toMatch(/pgdata:\/var\/lib\/postgresql\/data/)
  })
})
