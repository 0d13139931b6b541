import { execFile } from "node:child_process"
import { copyFileSync, existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { parseEnv, promisify } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Schema } from "effect"
import { parse } from "yaml"
import { loadSettings } from "../../src/config/AppConfig.js"
import { markdownSection, theBlock } from "../support/markdown.js"
import { scratchDirectory } from "../support/processes.js"

const Compose = Schema.Struct({
  services: Schema.Struct({
    service: Schema.Struct({
      env_file: Schema.String,
      environment: Schema.Record({ key: Schema.String, value: Schema.String }),
      volumes: Schema.optional(Schema.Array(Schema.String)),
      healthcheck: Schema.Struct({
        test: Schema.Array(Schema.String),
        interval: Schema.optional(Schema.String),
        start_period: Schema.optional(Schema.String)
      })
    })
  })
})

const composeFile: unknown = parse(readFileSync("docker-compose.yml", "utf8"))
const compose = Schema.decodeUnknownSync(Compose)(composeFile)
const serviceNames = Object.keys(Schema.decodeUnknownSync(Schema.Struct({ services: Schema.Record({ key: Schema.String, value: Schema.Unknown }) }))(composeFile).services)
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

describe("README, Docker, against docker-compose.yml", () => {
  const docker = markdownSection("README.md", "### Docker")
  const commands = theBlock(docker, "sh", "docker compose up")
  const lines = commands.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#"))
  const variablesIn = (text: string) => Array.from(text.matchAll(/`([A-Z][A-Z0-9_]+)`/g), (m) => m[1] ?? "")
  /** The variables named in the section from `start` to the first `end` after it. */
  const clause = (start: string, end: string) => {
    const at = docker.indexOf(start)
    expect(at, `the Docker section says "${start}"`).toBeGreaterThanOrEqual(0)
    return variablesIn(docker.slice(at, docker.indexOf(end, at)))
  }
  const interpolated = (value: string) => value.includes("${")

  it("says compose refuses to start without exactly the variables it requires of .env", () => {
    const required = Object.entries(service.environment).filter(([, value]) => /\$\{[A-Z0-9_]+:\?/.test(value)).map(([name]) => name)
    expect(clause("refuses to start until", ";").sort()).toEqual(required.sort())
  })

  it("says compose sets exactly the variables it gives the service whatever .env says", () => {
    const fixed = Object.entries(service.environment).filter(([, value]) => !interpolated(value)).map(([name]) => name)
    expect(clause("Compose sets", "itself").sort()).toEqual(fixed.sort())
  })

  it("names only variables that reach the service: set by compose, or a line of .env.example, which env_file hands over", () => {
    expect(service.env_file).toBe(".env")
    const known = new Set([...Object.keys(service.environment), ...Object.keys(example)])
    expect(variablesIn(docker).filter((name) => !known.has(name))).toEqual([])
  })

  it("gives compose v2's commands, on the services the compose file has", () => {
    const composeLines = lines.filter((line) => line.startsWith("docker"))
    expect(composeLines.length).toBeGreaterThan(0)
    for (const line of composeLines) expect(line).toMatch(/^docker compose /)
    for (const [, name] of composeLines.join("\n").matchAll(/^docker compose (?:logs|exec|restart|stop|start)(?: -\w+)* ([a-z][\w-]*)/gm)) {
      expect(serviceNames).toContain(name)
    }
  })

  it("states the healthcheck's timing as the compose file has it", () => {
    const [, every, startPeriod] = /every (\d+) s after a (\d+) s start period/.exec(docker) ?? []
    expect(`${every}s`).toBe(service.healthcheck.interval)
    expect(`${startPeriod}s`).toBe(service.healthcheck.start_period)
    expect(service.healthcheck.test.join(" ")).toContain("/health")
  })

  it.effect("its commands, run on a copy of .env.example, make a .env compose starts from and the service accepts in production", () =>
    Effect.gen(function*() {
      const cwd = scratchDirectory()
      copyFileSync(".env.example", join(cwd, ".env.example"))
      // Everything but compose itself and the request to the running service.
      const script = lines.filter((line) => !line.startsWith("docker ") && !line.startsWith("curl ")).join("\n")
      yield* Effect.promise(() =>
        promisify(execFile)("bash", ["-e", "-c", script], { cwd, env: { PATH: `${dirname(process.execPath)}:${process.env["PATH"] ?? ""}` } })
      )
      const dotenv = parseEnv(readFileSync(join(cwd, ".env"), "utf8"))
      const { environment, missing } = composeEnvironment(dotenv)
      expect(missing).toEqual([])
      const entries = Object.entries(environment).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== "")
      const settings = yield* loadSettings({ servesApi: true }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries))))
      expect(settings.deployEnv).toBe("production")
      expect(settings.frontendUrl.protocol).toBe("https:")
      expect(settings.encryptionKeys).toHaveLength(1)
      expect(settings.apiKeys).toHaveLength(1)
    }))
})
