import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, FiberRef, Option, Redacted } from "effect"
import { load } from "../../src/config/AppConfig.js"
import type { ConfigInvalid } from "../../src/config/ConfigInvalid.js"
import { tracingConfig } from "../../src/config/tracing.js"
import { withTracing } from "../../src/observability/tracing.js"

const read = (env: Record<string, string>) =>
  Effect.withConfigProvider(tracingConfig, ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("tracing configuration (OTEL_*)", () => {
  it.effect("off unless an OTLP endpoint is set, and off again with OTEL_SDK_DISABLED", () =>
    Effect.gen(function*() {
      expect(yield* read({})).toEqual(Option.none())
      expect(yield* read({ OTEL_SERVICE_NAME: "x" })).toEqual(Option.none())
      expect(yield* read({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SDK_DISABLED: "true" })).toEqual(Option.none())
    }))

  it.effect("the traces URL: the endpoint's /v1/traces after its path, or the traces endpoint as given", () =>
    Effect.gen(function*() {
      const urlOf = (env: Record<string, string>) => Effect.map(read(env), (s) => Option.getOrThrow(s).url.href)
      expect(yield* urlOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toBe("http://collector:4318/v1/traces")
      expect(yield* urlOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "https://otlp.example.com/otlp/" })).toBe("https://otlp.example.com/otlp/v1/traces")
      expect(yield* urlOf({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://traces:9999/ingest"
      })).toBe("http://traces:9999/ingest")
    }))

  it.effect("protocol, headers, resource attributes and batching as the OpenTelemetry variables define them", () =>
    Effect.gen(function*() {
      const settings = Option.getOrThrow(yield* read({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
        OTEL_EXPORTER_OTLP_HEADERS: "x-api-key=abc%3D%3D,x-team=seo",
        OTEL_EXPORTER_OTLP_TRACES_HEADERS: "x-team=content",
        OTEL_RESOURCE_ATTRIBUTES: "deployment.region=eu-west-1,owner=growth%20tools",
        OTEL_BSP_SCHEDULE_DELAY: "250",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "64"
      }))
      expect(settings.protocol).toBe("http/protobuf")
      expect(settings.serviceName).toBe("oauth-integrations")
      expect(Redacted.value(settings.headers)).toEqual({ "x-api-key": "abc==", "x-team": "content" })
      expect(String(settings.headers)).not.toContain("abc")
      expect(settings.resourceAttributes).toEqual({ "deployment.region": "eu-west-1", owner: "growth tools" })
      expect(Duration.toMillis(settings.exportInterval)).toBe(250)
      expect(settings.maxBatchSize).toBe(64)
      const json = Option.getOrThrow(yield* read({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "HTTP/JSON" }))
      expect(json.protocol).toBe("http/json")
    }))

  it.effect("bad values are listed with the other problems at start, each naming its variable", () =>
    Effect.gen(function*() {
      const failure: ConfigInvalid = yield* Effect.flip(load.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({
        DEPLOY_ENV: "development",
        TOKEN_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 1).toString("base64")}`,
        API_KEYS: "tracing-config-test-key-0123456789",
        PORT: "99999",
        OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318",
        OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
        OTEL_EXPORTER_OTLP_HEADERS: "novalue",
        OTEL_BSP_SCHEDULE_DELAY: "soon"
      }))))))
      expect(failure.problems).toEqual(expect.arrayContaining([
        "PORT: must be an integer from 0 to 65535",
        "OTEL_EXPORTER_OTLP_ENDPOINT: must be an absolute http(s) URL",
        "OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported: must be http/protobuf or http/json",
        "OTEL_EXPORTER_OTLP_HEADERS: must be a list of key=value pairs separated by commas",
        "OTEL_BSP_SCHEDULE_DELAY: must be an integer from 1 to 600000"
      ]))
    }))

  it.effect("unset, the program runs with the tracer off: its spans are never made", () =>
    Effect.gen(function*() {
      const inside = yield* withTracing(Effect.all([
        FiberRef.get(FiberRef.currentTracerEnabled),
        Effect.withSpan(Effect.currentSpan, "probe").pipe(Effect.map((span) => span._tag === "Span" && span.sampled), Effect.orElseSucceed(() => false))
      ])).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
      expect(inside).toEqual([false, false])
      expect(yield* FiberRef.get(FiberRef.currentTracerEnabled)).toBe(true)
    }))
})
