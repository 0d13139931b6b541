import { makeRunMain } from "@effect/platform/Runtime"

/**
 * Runs the main program as NodeRuntime.runMain does, but for how it hears SIGINT and SIGTERM.
 * NodeRuntime's stops listening at the first signal, so a second one kills Node at once,
 * skipping the finalizers that wait for the platform calls in flight — and a second comes
 * within milliseconds whenever the service runs under npm: Ctrl-C signals the terminal's
 * whole process group, npm passes its own on to node, and so do process managers that signal
 * a group. Here the first signal interrupts the program and every later one is absorbed
 * until the program has ended (SIGKILL still stops it at once). `onSignal` hears each, with
 * its rank (1 for the first).
 */
export const makeRunMainKeepingSignals = (onSignal: (signal: NodeJS.Signals, rank: number) => void) =>
  makeRunMain(({ fiber, teardown }) => {
    const keepAlive = setInterval(() => {}, 2 ** 31 - 1)
    let received = 0
    const listener = (signal: NodeJS.Signals) => {
      received++
      onSignal(signal, received)
      if (received === 1) fiber.unsafeInterruptAsFork(fiber.id())
    }
    process.on("SIGINT", listener)
    process.on("SIGTERM", listener)
    fiber.addObserver((exit) => {
      clearInterval(keepAlive)
      teardown(exit, (code) => {
        process.off("SIGINT", listener)
        process.off("SIGTERM", listener)
        if (received > 0 || code !== 0) process.exit(code)
      })
    })
  })
