import { randomBytes } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option, Tracer } from "effect"
import type { Sampler } from "../../src/config/tracing.js"
import { tracingConfig } from "../../src/config/tracing.js"
import { withinRatio, withSampler } from "../../src/observability/sampling.js"

/** A tracer that keeps the spans it is asked to make, as an exporter sees them once they end. */
const recording = () => {
  const ended: Array<Tracer.Span> = []
  let n = 0
  const tracer = Tracer.make({
    span(name, parent, context, links, startTime, kind) {
      const traceId = Option.match(parent, { onNone: () => randomBytes(16).toString("hex"), onSome: (p) => p.traceId })
      const span: Tracer.Span = {
        _tag: "Span", name, parent, context, links, kind, traceId, spanId: (n++).toString(16).padStart(16, "0"), sampled: true,
        status: { _tag: "Started", startTime }, attributes: new Map(),
        end: () => ended.push(span), attribute: () => undefined, event: () => undefined, addLinks: () => undefined
      }
      return span
    },
    context: (f) => f()
  })
  return { tracer, ended }
}

/** A root span with a child under it, `traces` times, through `sampler`; the names of the spans exported. */
const exported = (sampler: Sampler, traces: number, parent?: Tracer.AnySpan) => {
  const { ended, tracer } = recording()
  const trace = Effect.void.pipe(Effect.withSpan("child"), Effect.withSpan("root", parent === undefined ? {} : { parent }))
  Effect.runSync(Effect.withTracer(Effect.forEach(Array.from({ length: traces }), () => trace, { discard: true }), withSampler(tracer, sampler)))
  return ended
}

describe("trace sampling (OTEL_TRACES_SAMPLER)", () => {
  it("always_on records every span, always_off none", () => {
    expect(exported({ parentBased: true, ratio: 1 }, 10)).toHaveLength(20)
    expect(exported({ parentBased: false, ratio: 0 }, 10)).toHaveLength(0)
    expect(exported({ parentBased: true, ratio: 0 }, 10)).toHaveLength(0)
  })

  it("a ratio records about that share of the traces, each whole or not at all", () => {
    for (const parentBased of [true, false]) {
      const spans = exported({ parentBased, ratio: 0.25 }, 2000)
      const roots = spans.filter((s) => s.name === "root")
      expect(roots.length).toBeGreaterThan(350)
      expect(roots.length).toBeLessThan(650)
      // Every recorded child's trace has its root recorded, and the other way round.
      const rootTraces = new Set(roots.map((s) => s.traceId))
      const childTraces = new Set(spans.filter((s) => s.name === "child").map((s) => s.traceId))
      expect(childTraces).toEqual(rootTraces)
    }
    expect(withinRatio("0".repeat(32), 0.01)).toBe(true)
    expect(withinRatio("f".repeat(32), 0.99)).toBe(false)
  })

  it("parent-based samplers follow the caller's decision (traceparent's flag)", () => {
    const unsampled = Tracer.externalSpan({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", sampled: false })
    const sampled = Tracer.externalSpan({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", sampled: true })
    expect(exported({ parentBased: true, ratio: 1 }, 3, unsampled)).toHaveLength(0)
    expect(exported({ parentBased: true, ratio: 0 }, 3, sampled)).toHaveLength(6)
  })

  it("reads the sampler and its argument, and refuses what OpenTelemetry does not define", () =>
    Effect.runPromise(Effect.gen(function*() {
      const read = (env: Record<string, string>) =>
        Effect.withConfigProvider(Effect.either(tracingConfig), ConfigProvider.fromMap(new Map(Object.entries({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", ...env }))))
      const samplerOf = (env: Record<string, string>) => Effect.map(read(env), (e) => (e._tag === "Right" ? Option.getOrThrow(e.right).sampler : e.left.toString()))
      expect(yield* samplerOf({})).toEqual({ parentBased: true, ratio: 1 })
      expect(yield* samplerOf({ OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.1" })).toEqual({ parentBased: true, ratio: 0.1 })
      expect(yield* samplerOf({ OTEL_TRACES_SAMPLER: "always_off" })).toEqual({ parentBased: false, ratio: 0 })
      expect(yield* samplerOf({ OTEL_TRACES_SAMPLER: "traceidratio" })).toContain("OTEL_TRACES_SAMPLER_ARG: is required with OTEL_TRACES_SAMPLER=traceidratio")
      expect(yield* samplerOf({ OTEL_TRACES_SAMPLER: "jaeger_remote" })).toContain("must be one of always_on, always_off, traceidratio")
      expect(yield* samplerOf({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "2" })).toContain("must be a number from 0 to 1")
    })))
})
