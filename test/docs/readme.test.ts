import { execFile } from "node:child_process"
import { writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { promisify } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { onTestFinished } from "vitest"
import { gsc } from "../../src/platforms/gsc.js"
import { markdownSection, theBlock } from "../support/markdown.js"
import { startFakeGsc } from "../support/platforms/index.js"
import { migratedDatabase, scratchDirectory, type ServiceProcess, startService } from "../support/processes.js"

const run = promisify(execFile)

/** Where the README's commands reach the service: `npm start`'s default address. */
const README_BASE = "http://127.0.0.1:8080"

const api = markdownSection("README.md", "## API")
/** The `.env` lines the walkthrough asks for before `npm start`. */
const dotenv = theBlock(api, "dotenv", "_REDIRECT_URI=")
const walkthrough = theBlock(api, "sh", "/authorize")

interface Command {
  /** The command as written, continuation lines joined. */
  readonly text: string
  /** Its `# → ` line, if any: the answer, `...` standing for whatever varies. */
  readonly answer: string | undefined
}

/** The walkthrough's variable assignments (`KEY=...`) and its commands, each with the answer it announces. */
const parseWalkthrough = (block: string): { readonly assignments: ReadonlyArray<string>; readonly commands: ReadonlyArray<Command> } => {
  const assignments: Array<string> = []
  const commands: Array<{ text: string; answer: string | undefined }> = []
  const lines = block.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? ""
    if (line.startsWith("# → ")) {
      const last = commands.at(-1)
      if (last === undefined || last.answer !== undefined) throw new Error(`a "# →" line follows no command: ${line}`)
      last.answer = line.slice("# → ".length).trim()
    } else if (line.startsWith("#") || line.trim() === "") {
      continue
    } else if (/^[A-Z_][A-Z0-9_]*=/.test(line)) {
      assignments.push(line)
    } else {
      let text = line
      while (text.endsWith("\\") && i + 1 < lines.length) text = `${text.slice(0, -1)}${lines[++i] ?? ""}`
      commands.push({ text, answer: undefined })
    }
  }
  return { assignments, commands }
}

/** `NAME=value` lines; a value of `...` is the reader's to fill in. */
const parseDotenv = (block: string) =>
  block.split("\n").filter((line) => /^[A-Z_][A-Z0-9_]*=/.test(line)).map((line) => {
    const at = line.indexOf("=")
    return [line.slice(0, at), line.slice(at + 1).trim()] as const
  })

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** An announced answer as a pattern: the text as written, each `...` any run of characters. */
const answerPattern = (answer: string) => new RegExp(`^${answer.split("...").map(escapeRegExp).join("[\\s\\S]*")}$`)

const replaceAll = (text: string, substitutions: ReadonlyArray<readonly [string, string]>) =>
  substitutions.reduce((acc, [from, to]) => acc.split(from).join(to), text)

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

/**
 * `npm start` (the built service) in `cwd` on a free port, with the .env `writeDotenv` writes for
 * that address; tried again when another process took the port first.
 */
const startOnFreePort = async (env: Readonly<Record<string, string>>, cwd: string, writeDotenv: (base: string) => void) => {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    writeDotenv(base)
    const service = startService(["serve"], { ...env, PORT: String(port) }, cwd)
    try {
      await service.waitForLine(/Listening on http/)
      return { service, base }
    } catch (error) {
      if (attempt >= 2 || !service.lines.some((l) => l.includes("already in use"))) throw error
    }
  }
}

const stop = async (service: ServiceProcess) => {
  service.signal("SIGTERM")
  await service.exit
}

/**
 * The README's walkthrough, run as a reader would: the `.env` lines it gives (Google's client id
 * and secret filled in with the fake's, Google's endpoints pointed at the fake as a proxy would
 * be), the service `npm start` builds, each command through bash with the key it printed, and
 * the browser's part done by following the redirects by hand. A `# → ` line after a command is
 * its answer, `...` for whatever varies; a command without one must not answer an error.
 */
describe("README, API: the walkthrough", () => {
  it("works as written on the service `npm start` runs with the .env lines it gives, GSC pointed at a fake Google", async () => {
    const fake = await startFakeGsc()
    onTestFinished(() => fake.close())
    const databaseUrl = await migratedDatabase()
    const cwd = scratchDirectory()

    // The README's endpoints are Google's; the fake's stand in for them, as a proxy would.
    const fakeEnv = fake.env("unused")
    const endpointVariables = Object.keys(gsc.endpoints).map((name) => [name, `GSC_${name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()}_URL`] as const)
    const toFake = endpointVariables.map(([name, variable]) => [gsc.endpoints[name] ?? "", fakeEnv[variable] ?? ""] as const)

    const { service, base } = await startOnFreePort(
      {
        DATABASE_URL: databaseUrl,
        ...Object.fromEntries(endpointVariables.map(([, variable]) => [variable, fakeEnv[variable] ?? ""]))
      },
      cwd,
      (base) => {
        // The .env the reader writes: the README's lines, the client's id and secret filled in.
        const lines = parseDotenv(dotenv).map(([name, value]) => {
          const filled = value === "..." ? fakeEnv[name] : replaceAll(value, [[README_BASE, base]])
          if (filled === undefined) throw new Error(`the README's .env leaves ${name} to fill in, and nothing here has a value for it`)
          return `${name}=${filled}`
        })
        writeFileSync(join(cwd, ".env"), `${lines.join("\n")}\n`)
      }
    )
    onTestFinished(() => stop(service))

    // The key `npm start` prints the first time, as the walkthrough's KEY says.
    const printed = /API key, token scope included: ([A-Za-z0-9_-]+)/.exec(await service.waitForLine(/API key, token scope included/))?.[1]
    expect(printed).toBeDefined()
    const values: Record<string, string> = { KEY: printed ?? "" }

    const { assignments, commands } = parseWalkthrough(walkthrough)
    expect(commands.length).toBeGreaterThan(0)
    const preamble = assignments.map((line) =>
      line.replace(/^([A-Z_][A-Z0-9_]*)=\.\.\.(?=\s|$)/, (_, name: string) => {
        const value = values[name]
        if (value === undefined) throw new Error(`the walkthrough leaves ${name} to fill in, and \`npm start\` gives no value for it`)
        return `${name}='${value}'`
      })
    )
    const substitutions: Array<readonly [string, string]> = [[README_BASE, base], ...toFake]
    let confirmation: string | undefined

    /**
     * The browser's part, step 2: auth_url at the platform (the fake consents at once), its
     * redirect to GSC_REDIRECT_URI, this service's callback, and the callback's redirect to
     * return_to, whose query the README describes.
     */
    const browse = async (authUrl: string, returnTo: string) => {
      const consent = await fetch(authUrl, { redirect: "manual" })
      expect(consent.status).toBe(302)
      const toCallback = new URL(consent.headers.get("location") ?? "")
      expect(`${toCallback.origin}${toCallback.pathname}`).toBe(`${base}/oauth/gsc/callback`)
      const callback = await fetch(toCallback, { redirect: "manual" })
      expect(callback.status).toBe(302)
      const landed = new URL(callback.headers.get("location") ?? "")
      expect(`${landed.origin}${landed.pathname}`).toBe(returnTo)
      const described = /return_to\?([A-Za-z0-9_=&<>-]+)/.exec(walkthrough)?.[1]
      expect(described, "the walkthrough says where the browser lands: return_to?...").toBeDefined()
      const expected = new URLSearchParams(described)
      expect([...landed.searchParams.keys()].sort()).toEqual([...expected.keys()].sort())
      for (const [name, value] of expected) {
        if (value === "<code>") {
          confirmation = landed.searchParams.get(name) ?? undefined
          expect(confirmation).toMatch(/^[A-Za-z0-9_-]+$/)
        } else {
          expect(landed.searchParams.get(name), name).toBe(value)
        }
      }
    }

    for (const command of commands) {
      if (command.text.includes("<code>") && confirmation === undefined) throw new Error(`${command.text} needs the code of the browser step, which came before no command`)
      const text = replaceAll(command.text, [...substitutions, ["<code>", confirmation ?? ""]])
      const { stdout } = await run("bash", ["-c", [...preamble, text].join("\n")], { env: { PATH: process.env["PATH"] ?? "" }, timeout: 30_000 })
      const answer = stdout.trim()
      if (command.answer === undefined) {
        expect(answer, command.text).not.toMatch(/"_tag":/)
      } else {
        expect(answer, command.text).toMatch(answerPattern(replaceAll(command.answer, substitutions)))
      }
      const authUrl = /"auth_url":"([^"]+)"/.exec(answer)?.[1]
      if (authUrl !== undefined) {
        const returnTo = /"return_to":\s*"([^"]+)"/.exec(command.text)?.[1]
        expect(returnTo, "the authorize call names its return_to").toBeDefined()
        await browse(authUrl, returnTo ?? "")
      }
    }
    expect(confirmation, "the walkthrough goes through the browser step").toBeDefined()
  }, 120_000)
})
