import { Metric, MetricLabel } from "effect"

/** The metric with these tags (data-first, so the metric's type is kept). */
export const withTags = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>, tags: Readonly<Record<string, string>>) =>
  Metric.taggedWithLabels(metric, Object.entries(tags).map(([key, value]) => MetricLabel.make(key, value)))

/**
 * withTags for hot paths: each tagged metric is made once per set of tags, not per update
 * (a tagged metric costs a key and its hash to make).
 */
export const taggedBy = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>) => {
  const made = new Map<string, Metric.Metric<Type, In, Out>>()
  return (tags: Readonly<Record<string, string>>): Metric.Metric<Type, In, Out> => {
    let key = ""
    for (const name in tags) key += `${name}\u0000${tags[name]}\u0000`
    let found = made.get(key)
    if (found === undefined) {
      found = withTags(metric, tags)
      made.set(key, found)
    }
    return found
  }
}
