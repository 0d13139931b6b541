import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Logger } from "effect"
import { vi } from "vitest"
import { lineLogger } from "../../src/logging.js"

/** What the logger printed for `effect`, a string per console.log call. */
const printed = (effect: Effect.Effect<void>, tty = false) => {
  const spy = vi.spyOn(console, "log").mockImplementation(() => undefined)
  try {
    Effect.runSync(effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, lineLogger(tty)))))
    return spy.mock.calls.map((args) => String(args[0]))
  } finally {
    spy.mockRestore()
  }
}

const figures = { due: 3, refreshed: 2, validated: 0, warned: 0, skipped: 1, needs_reauth: 0, failed: 1, failed_by_reason: { network: 1 } }

describe("the development log line", () => {
  it("the monitor tick is one line, its fields in a fixed order whatever order they were given in", () => {
    const forwards = printed(Effect.logInfo("monitor tick").pipe(Effect.annotateLogs({ ...figures, duration_ms: 12 })))
    const reversed = printed(Effect.logInfo("monitor tick").pipe(Effect.annotateLogs(Object.fromEntries(Object.entries({ ...figures, duration_ms: 12 }).reverse()))))
    expect(forwards).toHaveLength(1)
    const withoutTime = (line: string) => line.replace(/^\d\d:\d\d:\d\d\.\d{3} /, "")
    expect(withoutTime(forwards[0]!)).toBe(
      "INFO  monitor tick due=3 duration_ms=12 failed=1 failed_by_reason={\"network\":1} needs_reauth=0 refreshed=2 skipped=1 validated=0 warned=0"
    )
    expect(withoutTime(reversed[0]!)).toBe(withoutTime(forwards[0]!))
    expect(forwards[0]).not.toContain("\n")
    expect(forwards[0]).not.toContain("\u001b")
  })

  it("quotes values that hold spaces, colours the level only on a terminal, and puts a cause under its line", () => {
    const [line] = printed(Effect.logWarning("refresh failed").pipe(Effect.annotateLogs({ platform: "gsc", error: "timed out" })), true)
    expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} \u001b\[33mWARN \u001b\[0m refresh failed error="timed out" platform=gsc$/)
    const [failure] = printed(Effect.logError("the service stopped on an unexpected error", Cause.die(new Error("boom"))))
    expect(failure?.split("\n")[0]).toMatch(/ERROR the service stopped on an unexpected error$/)
    expect(failure?.split("\n").slice(1).join("\n")).toContain("boom")
  })
})
