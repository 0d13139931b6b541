import { randomBytes } from "node:crypto"
import { type Context, type Exit, Option, Tracer } from "effect"
import type { Sampler } from "../config/tracing.js"

/**
 * Whether the trace `traceId` falls within `ratio`: decided by the trace id alone, so every
 * process and every span of a trace decides alike (its last 52 bits, as a fraction).
 */
export const withinRatio = (traceId: string, ratio: number): boolean =>
  ratio >= 1 || (ratio > 0 && Number.parseInt(traceId.slice(-13), 16) / 2 ** 52 < ratio)

/** A span that is not recorded: it carries its trace's ids, for its children to follow, and nothing else. */
class UnsampledSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly sampled = false
  readonly spanId = randomBytes(8).toString("hex")
  readonly attributes: ReadonlyMap<string, unknown> = new Map()
  readonly links: ReadonlyArray<Tracer.SpanLink> = []
  status: Tracer.SpanStatus
  constructor(
    readonly name: string,
    readonly traceId: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Context.Context<never>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind
  ) {
    this.status = { _tag: "Started", startTime }
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>) {
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
  }
  attribute() {}
  event() {}
  addLinks() {}
}

/**
 * `tracer` recording only the spans `sampler` keeps: a span it drops is never exported, and
 * neither are its children under a parent-based sampler.
 */
export const withSampler = (tracer: Tracer.Tracer, sampler: Sampler): Tracer.Tracer =>
  Tracer.make({
    span(name, parent, context, links, startTime, kind, options) {
      if (Option.isSome(parent)) {
        const keep = sampler.parentBased ? parent.value.sampled : withinRatio(parent.value.traceId, sampler.ratio)
        return keep ? tracer.span(name, parent, context, links, startTime, kind, options) : new UnsampledSpan(name, parent.value.traceId, parent, context, startTime, kind)
      }
      // A root: its trace id is the tracer's to make; a span never ended is never exported.
      const span = tracer.span(name, parent, context, links, startTime, kind, options)
      return withinRatio(span.traceId, sampler.ratio) ? span : new UnsampledSpan(name, span.traceId, parent, context, startTime, kind)
    },
    context: tracer.context
  })
