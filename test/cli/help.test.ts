import { spawnSync } from "node:child_process"
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { COMMANDS } from "../../src/cli.js"
import { commandHelp, interpret, rootHelp } from "../../src/cliHelp.js"
import { MAIN } from "../support/processes.js"

const ESC = "\u001b"
const helpOf = (args: ReadonlyArray<string>, tty = false) => {
  const request = Either.getOrThrow(interpret(args, COMMANDS, "9.9.9", tty))
  return request._tag === "Help" ? request.text : "(runs)"
}
const refusal = (args: ReadonlyArray<string>) => Either.flip(interpret(args, COMMANDS, "9.9.9", false)).pipe(Either.getOrElse(() => "(accepted)"))

describe("the command line's help", () => {
  it("names the program in every usage line, describes every command and option, and offers nothing LOG_LEVEL contradicts", () => {
    const root = helpOf(["--help"])
    expect(root).toContain("Usage: oauth-integrations <command> [options]")
    for (const command of COMMANDS) {
      expect(root).toContain(`  ${command.name}`)
      const help = helpOf([command.name, "--help"])
      const usage = help.split("\n").filter((l) => l.startsWith("Usage:"))
      expect(usage).toHaveLength(1)
      expect(usage[0]).toMatch(new RegExp(`^Usage: oauth-integrations ${command.name}( |$)`))
      expect(help).toBe(commandHelp(command, false))
      for (const option of command.options) {
        expect(option.description.length, option.name).toBeGreaterThan(10)
        expect(usage[0]).toContain(option.name)
        expect(help).toMatch(new RegExp(`\\n  ${option.name}[^\\n]* {2,}${option.description.split(" ")[0]}`))
      }
    }
    for (const text of [root, ...COMMANDS.map((c) => commandHelp(c, false))]) {
      expect(text).not.toMatch(/--log-level|--wizard|--completions|warning|none|A true or false value|This setting is optional/)
      expect(text).not.toContain(ESC)
      expect(Math.max(...text.split("\n").filter((l) => !l.startsWith("Usage:")).map((l) => l.length))).toBeLessThanOrEqual(100)
    }
    // On a terminal, headings are bold; elsewhere the text is plain.
    expect(rootHelp(COMMANDS, "9.9.9", true)).toContain(`${ESC}[1mUsage:${ESC}[0m`)
    expect(helpOf(["help", "status"])).toBe(helpOf(["status", "-h"]))
    expect(helpOf(["--version"])).toBe("oauth-integrations 9.9.9\n")
  })

  it("refuses what cannot be right, naming what is allowed, before any command runs", () => {
    expect(refusal(["--log-level", "debug", "serve"])).toBe(
      "--log-level is not an option of oauth-integrations: set LOG_LEVEL instead (trace, debug, info, warn, error, fatal, all or off)"
    )
    expect(refusal(["status", "--log-level=warning"])).toMatch(/^--log-level is not an option of oauth-integrations: set LOG_LEVEL/)
    expect(refusal(["stauts"])).toBe("unknown command 'stauts': the commands are serve, monitor, migrate, backfill, rotate-keys, status; run oauth-integrations --help")
    expect(refusal(["status", "--jsn"])).toBe("unknown option --jsn for status: its options are --json, --url; run oauth-integrations status --help")
    expect(refusal(["status", "--url"])).toBe("--url needs a value: --url <url>; run oauth-integrations status --help")
    expect(refusal(["serve", "--once"])).toBe("serve takes no option (--once was given)")
    expect(refusal(["monitor", "--once=yes"])).toMatch(/^--once takes no value/)
    // What is right is left to the command's parser.
    for (const args of [["serve"], ["monitor", "--once"], ["status", "--json", "--url", "http://127.0.0.1:8080"], ["status", "--url=http://x"], ["backfill", "--platform", "gsc", "--platform", "wix", "a.db", "b.db"], ["rotate-keys", "--status"]]) {
      expect(Either.getOrThrow(interpret(args, COMMANDS, "9.9.9", false))._tag, args.join(" ")).toBe("Run")
    }
  })

  it("the built command prints it without colour codes into a pipe, and exits non-zero on a refused argument", () => {
    const help = spawnSync(process.execPath, [MAIN, "status", "--help"], { encoding: "utf8" })
    expect(help.status).toBe(0)
    expect(help.stdout).toContain("Usage: oauth-integrations status [--json] [--url <url>]")
    expect(help.stdout).not.toContain(ESC)
    const refused = spawnSync(process.execPath, [MAIN, "--log-level", "warning", "status"], { encoding: "utf8" })
    expect(refused.status).not.toBe(0)
    expect(refused.stderr.trim()).toMatch(/^error: --log-level is not an option of oauth-integrations: set LOG_LEVEL instead/)
    expect(refused.stdout).toBe("")
  })
})
