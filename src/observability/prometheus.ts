import { Effect, Metric, MetricState } from "effect"

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const metricName = (name: string) => name.replace(/[^a-zA-Z0-9_:]/g, "_")

const labels = (tags: ReadonlyArray<{ readonly key: string; readonly value: string }>, extra: Record<string, string> = {}) => {
  const all = [...tags.map((t) => [t.key, t.value] as const), ...Object.entries(extra)]
  return all.length === 0 ? "" : `{${all.map(([k, v]) => `${metricName(k)}="${escapeLabel(v)}"`).join(",")}}`
}

const number = (n: number | bigint) =>
  typeof n === "bigint" ? n.toString() : Number.isNaN(n) ? "NaN" : n === Infinity ? "+Inf" : n === -Infinity ? "-Inf" : String(n)

/** Every metric of the process in the Prometheus text exposition format (version 0.0.4). */
export const prometheusText = Effect.map(Metric.snapshot, (pairs) => {
  const families = new Map<string, { type: string; help: string | undefined; lines: Array<string> }>()
  const family = (name: string, type: string, help: string | undefined) => {
    const existing = families.get(name)
    if (existing !== undefined) return existing.lines
    const created = { type, help, lines: [] as Array<string> }
    families.set(name, created)
    return created.lines
  }
  for (const pair of pairs) {
    const name = metricName(pair.metricKey.name)
    const help = pair.metricKey.description._tag === "Some" ? pair.metricKey.description.value : undefined
    const tags = pair.metricKey.tags
    const state: unknown = pair.metricState
    if (MetricState.isCounterState(state)) {
      family(name, "counter", help).push(`${name}${labels(tags)} ${number(state.count)}`)
    } else if (MetricState.isGaugeState(state)) {
      family(name, "gauge", help).push(`${name}${labels(tags)} ${number(state.value)}`)
    } else if (MetricState.isHistogramState(state)) {
      const lines = family(name, "histogram", help)
      for (const [le, count] of state.buckets) lines.push(`${name}_bucket${labels(tags, { le: number(le) })} ${count}`)
      if (!state.buckets.some(([le]) => le === Infinity)) lines.push(`${name}_bucket${labels(tags, { le: "+Inf" })} ${state.count}`)
      lines.push(`${name}_sum${labels(tags)} ${number(state.sum)}`, `${name}_count${labels(tags)} ${state.count}`)
    } else if (MetricState.isFrequencyState(state)) {
      const lines = family(name, "counter", help)
      for (const [value, count] of state.occurrences) lines.push(`${name}${labels(tags, { value })} ${count}`)
    } else if (MetricState.isSummaryState(state)) {
      const lines = family(name, "summary", help)
      for (const [q, value] of state.quantiles) {
        if (value._tag === "Some") lines.push(`${name}${labels(tags, { quantile: number(q) })} ${number(value.value)}`)
      }
      lines.push(`${name}_sum${labels(tags)} ${number(state.sum)}`, `${name}_count${labels(tags)} ${state.count}`)
    }
  }
  const out: Array<string> = []
  for (const [name, f] of [...families.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    if (f.help !== undefined) out.push(`# HELP ${name} ${f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`)
    out.push(`# TYPE ${name} ${f.type}`, ...f.lines)
  }
  return out.join("\n") + "\n"
})
