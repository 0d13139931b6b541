import { Metric, MetricLabel } from "effect"

/** The metric with these tags (data-first, so the metric's type is kept). */
export const withTags = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>, tags: Readonly<Record<string, string>>) =>
  Metric.taggedWithLabels(metric, Object.entries(tags).map(([key, value]) => MetricLabel.make(key, value)))
