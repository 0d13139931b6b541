import { Clock, Effect, Ref } from "effect"
import type { BackfillReporter } from "./Backfill.js"

const number = (n: number) => n.toLocaleString("en-US")

/**
 * The backfill's progress on stderr: on a terminal, a bar redrawn at most every 100 ms (rows
 * done of the total, rate); otherwise one summary line at the end. Problems are printed as they
 * come, one line each.
 */
export const makeTerminalReporter = (stream: { readonly isTTY?: boolean; write(chunk: string): unknown } = process.stderr, label = "backfill") =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    const state = yield* Ref.make({ total: 0, done: 0, drawnAt: 0, drawn: false })
    const tty = stream.isTTY === true

    const line = (done: number, total: number, now: number) => {
      const seconds = Math.max((now - started) / 1000, 0.001)
      const width = 30
      const filled = total === 0 ? width : Math.min(width, Math.round((done / total) * width))
      return `${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${number(done)} / ${number(total)} rows, ${number(Math.round(done / seconds))} rows/s`
    }

    const draw = (force: boolean) =>
      Effect.gen(function*() {
        if (!tty) return
        const now = yield* Clock.currentTimeMillis
        const s = yield* Ref.get(state)
        if (!force && now - s.drawnAt < 100) return
        stream.write(`\r\x1b[2K${line(s.done, s.total, now)}`)
        yield* Ref.set(state, { ...s, drawnAt: now, drawn: true })
      })

    const reporter: BackfillReporter = {
      total: (rows) => Effect.zipRight(Ref.update(state, (s) => ({ ...s, total: s.total + rows })), draw(true)),
      advance: (rows) => Effect.zipRight(Ref.update(state, (s) => ({ ...s, done: s.done + rows })), draw(false)),
      problem: (text) =>
        Effect.flatMap(Ref.get(state), (s) =>
          Effect.zipRight(
            Effect.sync(() => stream.write(`${tty && s.drawn ? "\r\x1b[2K" : ""}${text}\n`)),
            Effect.zipRight(Ref.update(state, (t) => ({ ...t, drawnAt: 0 })), draw(true))
          ))
    }

    /** The last word of the progress: the bar's final state, or the one line. */
    const finish = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const s = yield* Ref.get(state)
      if (tty) stream.write(`\r\x1b[2K${line(s.done, s.total, now)}\n`)
      else stream.write(`${line(s.done, s.total, now).replace(/ \[[#.]+\]/, ":")} in ${((now - started) / 1000).toFixed(1)} s\n`)
    })

    return { reporter, finish } as const
  })
