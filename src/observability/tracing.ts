import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { hostname } from "node:os"
import { Effect, Layer, Option, Redacted } from "effect"
import { DeployEnvConfig } from "../config/DeployEnv.js"
import { type TracingSettings, tracingConfig } from "../config/tracing.js"
import { packageVersion } from "../oauth/userAgent.js"
import { withSampler } from "./sampling.js"

/** The OTLP/HTTP exporter of the settings: the sampled spans sent in batches, the last ones when the command ends. */
export const otlpTracerLayer = (settings: TracingSettings, deployEnv: string): Layer.Layer<never> =>
  Layer.unwrapScoped(Effect.map(OtlpTracer.make({
    url: settings.url.href,
    headers: Redacted.value(settings.headers),
    resource: {
      serviceName: settings.serviceName,
      serviceVersion: packageVersion,
      attributes: {
        "deployment.environment.name": deployEnv,
        "host.name": hostname(),
        "process.pid": process.pid,
        ...settings.resourceAttributes
      }
    },
    exportInterval: settings.exportInterval,
    maxBatchSize: settings.maxBatchSize,
    shutdownTimeout: "3 seconds"
  }), (tracer) => Layer.setTracer(withSampler(tracer, settings.sampler)))).pipe(
    Layer.provide(settings.protocol === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf),
    Layer.provide(FetchHttpClient.layer)
  )

/**
 * Runs `program` traced when an OTLP endpoint is configured (see config/tracing.ts), else
 * with the tracer off, so that the spans made everywhere (per request, platform call, SQL
 * statement) cost nothing. Invalid tracing variables leave tracing off here: the
 * configuration of the command reports them.
 */
export const withTracing = <A, E, R>(program: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(
    Effect.all([Effect.option(tracingConfig), Effect.option(DeployEnvConfig)]),
    ([settings, env]) =>
      Option.match(Option.flatten(settings), {
        onNone: () => Effect.withTracerEnabled(program, false),
        onSome: (s) => Effect.provide(program, otlpTracerLayer(s, Option.getOrElse(env, () => "development")))
      })
  )
