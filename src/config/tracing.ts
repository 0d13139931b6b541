import { Config, ConfigError, Duration, Either, Option, Redacted } from "effect"
import * as Rules from "./rules.js"

/** Which traces are recorded: OpenTelemetry's samplers, as OTEL_TRACES_SAMPLER names them. */
export interface Sampler {
  /** A span with a parent is recorded when its parent is (the parentbased_ samplers). */
  readonly parentBased: boolean
  /** The share of traces recorded otherwise: 1 always_on, 0 always_off, or traceidratio's argument. */
  readonly ratio: number
}

/** Where and how the spans are exported (OTLP over HTTP), when tracing is on. */
export interface TracingSettings {
  /** The traces URL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT's /v1/traces. */
  readonly url: URL
  readonly protocol: "http/protobuf" | "http/json"
  /** Sent with every export (OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TRACES_HEADERS): often a collector's API key. */
  readonly headers: Redacted.Redacted<Readonly<Record<string, string>>>
  readonly serviceName: string
  /** OTEL_RESOURCE_ATTRIBUTES, as given. */
  readonly resourceAttributes: Readonly<Record<string, string>>
  /** How long spans wait to be sent together (OTEL_BSP_SCHEDULE_DELAY, milliseconds). */
  readonly exportInterval: Duration.Duration
  /** At most this many spans per export, sent as soon as there are this many (OTEL_BSP_MAX_EXPORT_BATCH_SIZE). */
  readonly maxBatchSize: number
  /** Which traces are recorded (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG). */
  readonly sampler: Sampler
}

const SAMPLERS = ["always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"] as const
type SamplerName = typeof SAMPLERS[number]

const parseSampler: Rules.Parser<SamplerName> = (raw) => {
  const value = raw.trim().toLowerCase()
  const found = SAMPLERS.find((name) => name === value)
  return found === undefined ? Either.left(`must be one of ${SAMPLERS.join(", ")}`) : Either.right(found)
}

/** The sampler of OTEL_TRACES_SAMPLER; its argument is the ratio of the traceidratio ones. */
const samplerConfig: Config.Config<Sampler> = Config.all({
  name: Rules.checked("OTEL_TRACES_SAMPLER", parseSampler).pipe(Config.withDefault<SamplerName>("parentbased_always_on")),
  ratio: Rules.checked("OTEL_TRACES_SAMPLER_ARG", Rules.numberIn(0, 1)).pipe(Config.option)
}).pipe(Config.mapOrFail(({ name, ratio }): Either.Either<Sampler, ConfigError.ConfigError> => {
  const parentBased = name.startsWith("parentbased_")
  if (name.endsWith("always_on")) return Either.right({ parentBased, ratio: 1 })
  if (name.endsWith("always_off")) return Either.right({ parentBased, ratio: 0 })
  return Option.match(ratio, {
    onNone: () => Either.left(ConfigError.InvalidData([], `OTEL_TRACES_SAMPLER_ARG: is required with OTEL_TRACES_SAMPLER=${name} (a ratio from 0 to 1)`)),
    onSome: (r) => Either.right({ parentBased, ratio: r })
  })
}))

/** `key=value,key=value` with percent-encoded values, as the OpenTelemetry variables are written. */
const parsePairs = (raw: string): Either.Either<Readonly<Record<string, string>>, string> => {
  const pairs: Record<string, string> = {}
  for (const item of raw.split(",")) {
    if (item.trim() === "") continue
    const at = item.indexOf("=")
    const key = at < 0 ? "" : item.slice(0, at).trim()
    if (key === "") return Either.left("must be a list of key=value pairs separated by commas")
    try {
      pairs[key] = decodeURIComponent(item.slice(at + 1).trim())
    } catch {
      return Either.left(`the value of ${key} is not valid percent-encoding`)
    }
  }
  return Either.right(pairs)
}

const parseProtocol: Rules.Parser<"http/protobuf" | "http/json"> = (raw) => {
  const value = raw.trim().toLowerCase()
  if (value === "http/protobuf" || value === "http/json") return Either.right(value)
  return Either.left(value === "grpc" ? "grpc is not supported: must be http/protobuf or http/json" : "must be http/protobuf or http/json")
}

/** The OTLP/HTTP base URL's traces path: `…/v1/traces` after whatever path it has. */
const tracesOf = (base: URL) => new URL(`${base.pathname.replace(/\/+$/, "")}/v1/traces`, base)

const pairs = (name: string) => Rules.checked(name, parsePairs).pipe(Config.withDefault<Readonly<Record<string, string>>>({}))

/** Pairs that may hold a secret (an exporter's headers): read as Redacted, so a problem never quotes them. */
const secretPairs = (name: string) =>
  Rules.secret(name, (c) => Rules.refine(Config.map(c, Redacted.value), parsePairs).pipe(Config.withDefault<Readonly<Record<string, string>>>({})))

/**
 * The OpenTelemetry variables: tracing is on when an OTLP endpoint is set (and
 * OTEL_SDK_DISABLED is not true). Read by the configuration, which reports their problems
 * with every other, and by the tracer, before any command runs.
 */
export const tracingConfig: Config.Config<Option.Option<TracingSettings>> = Config.all({
  disabled: Rules.boolean("OTEL_SDK_DISABLED", false),
  endpoint: Rules.httpUrl("OTEL_EXPORTER_OTLP_ENDPOINT").pipe(Config.option),
  tracesEndpoint: Rules.httpUrl("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").pipe(Config.option),
  protocol: Rules.checked("OTEL_EXPORTER_OTLP_PROTOCOL", parseProtocol).pipe(Config.option),
  tracesProtocol: Rules.checked("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", parseProtocol).pipe(Config.option),
  headers: secretPairs("OTEL_EXPORTER_OTLP_HEADERS"),
  tracesHeaders: secretPairs("OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
  serviceName: Rules.variable("OTEL_SERVICE_NAME", Config.withDefault("oauth-integrations")),
  resourceAttributes: pairs("OTEL_RESOURCE_ATTRIBUTES"),
  exportInterval: Rules.checked("OTEL_BSP_SCHEDULE_DELAY", Rules.integerIn(1, 600_000)).pipe(
    Config.map(Duration.millis),
    Config.withDefault(Duration.seconds(5))
  ),
  maxBatchSize: Rules.integer("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, { min: 1, max: 100_000 }),
  sampler: samplerConfig
}).pipe(Config.map((c): Option.Option<TracingSettings> => {
  const url = Option.orElse(c.tracesEndpoint, () => Option.map(c.endpoint, tracesOf))
  if (c.disabled || Option.isNone(url)) return Option.none()
  return Option.some({
    url: url.value,
    protocol: Option.getOrElse(Option.orElse(c.tracesProtocol, () => c.protocol), () => "http/protobuf" as const),
    headers: Redacted.make({ ...c.headers, ...c.tracesHeaders }),
    serviceName: c.serviceName.trim() === "" ? "oauth-integrations" : c.serviceName.trim(),
    resourceAttributes: c.resourceAttributes,
    exportInterval: c.exportInterval,
    maxBatchSize: c.maxBatchSize,
    sampler: c.sampler
  })
}))
