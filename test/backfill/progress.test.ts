import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeTerminalReporter } from "../../src/backfill/progress.js"

/** A stream that records what is written to it, a terminal or not. */
const recorder = (isTTY: boolean) => {
  const written: Array<string> = []
  const stream = { isTTY, write: (chunk: string) => void written.push(chunk) }
  return { stream, written }
}

describe("backfill progress", () => {
  it.effect("on a terminal: a bar with rows done of the total and the rate, redrawn in place, problems on lines of their own", () =>
    Effect.gen(function*() {
      const { stream, written } = recorder(true)
      const { finish, reporter } = yield* makeTerminalReporter(stream)
      yield* reporter.total(1000)
      yield* reporter.advance(500)
      yield* reporter.problem("alwrity.db: bing_oauth_tokens row 7: expires_at: not a time")
      yield* finish
      const text = written.join("")
      expect(text).toContain("\r")
      expect(text).toMatch(/\[#{15}\.{15}\] 500 \/ 1,000 rows/)
      expect(text).toContain("alwrity.db: bing_oauth_tokens row 7: expires_at: not a time\n")
      expect(written.at(-1)).toMatch(/\[#{15}\.{15}\] 500 \/ 1,000 rows, [\d,]+ rows\/s\n$/)
    }))

  it.effect("otherwise: no bar, one summary line at the end", () =>
    Effect.gen(function*() {
      const { stream, written } = recorder(false)
      const { finish, reporter } = yield* makeTerminalReporter(stream)
      yield* reporter.total(10)
      yield* reporter.advance(10)
      yield* finish
      expect(written).toHaveLength(1)
      expect(written[0]).toMatch(/^backfill: 10 \/ 10 rows, [\d,]+ rows\/s in \d+\.\d s\n$/)
      expect(written.join("")).not.toContain("\r")
    }))
})
