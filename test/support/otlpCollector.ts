import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

/** An OTLP attribute value as the JSON encoding writes it. */
interface AnyValue {
  readonly stringValue?: string
  readonly intValue?: string | number
  readonly doubleValue?: number
  readonly boolValue?: boolean
  readonly arrayValue?: { readonly values: ReadonlyArray<AnyValue> }
  readonly kvlistValue?: { readonly values: ReadonlyArray<KeyValue> }
}
interface KeyValue {
  readonly key: string
  readonly value: AnyValue
}
interface OtlpSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly kind: number
  readonly attributes: ReadonlyArray<KeyValue>
  readonly events?: ReadonlyArray<{ readonly name: string; readonly attributes?: ReadonlyArray<KeyValue> }>
  readonly status?: { readonly code: number; readonly message?: string }
}
interface ExportRequest {
  readonly resourceSpans: ReadonlyArray<{
    readonly resource: { readonly attributes: ReadonlyArray<KeyValue> }
    readonly scopeSpans: ReadonlyArray<{ readonly spans: ReadonlyArray<OtlpSpan> }>
  }>
}

/** A span as received, its attributes as plain values. */
export interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly name: string
  /** OTLP's SpanKind: 1 internal, 2 server, 3 client. */
  readonly kind: number
  readonly attributes: Readonly<Record<string, unknown>>
  readonly events: ReadonlyArray<{ readonly name: string; readonly attributes: Readonly<Record<string, unknown>> }>
  readonly statusCode: number | undefined
  readonly resource: Readonly<Record<string, unknown>>
}

const plain = (value: AnyValue): unknown => {
  if (value.stringValue !== undefined) return value.stringValue
  if (value.intValue !== undefined) return Number(value.intValue)
  if (value.doubleValue !== undefined) return value.doubleValue
  if (value.boolValue !== undefined) return value.boolValue
  if (value.arrayValue !== undefined) return value.arrayValue.values.map(plain)
  if (value.kvlistValue !== undefined) return record(value.kvlistValue.values)
  return undefined
}
const record = (pairs: ReadonlyArray<KeyValue> | undefined): Record<string, unknown> =>
  Object.fromEntries((pairs ?? []).map((p) => [p.key, plain(p.value)]))

/** Every string a span carries: its name, attribute values, events' names and attributes, status message. */
export const textsOf = (span: ReceivedSpan): ReadonlyArray<string> => {
  const texts: Array<string> = [span.name]
  const walk = (value: unknown): void => {
    if (typeof value === "string") texts.push(value)
    else if (Array.isArray(value)) value.forEach(walk)
    else if (typeof value === "object" && value !== null) Object.values(value).forEach(walk)
    else if (value !== undefined) texts.push(String(value))
  }
  walk(span.attributes)
  walk(span.resource)
  for (const event of span.events) {
    texts.push(event.name)
    walk(event.attributes)
  }
  return texts
}

/**
 * A collector of OTLP/HTTP traces on a free port: decodes the JSON encoding into spans, and
 * keeps every request's content type and raw body (the protobuf encoding is kept undecoded).
 */
export const startCollector = async () => {
  const spans: Array<ReceivedSpan> = []
  const requests: Array<{ readonly path: string; readonly contentType: string; readonly body: Buffer }> = []
  const server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const body = Buffer.concat(chunks)
      const contentType = req.headers["content-type"] ?? ""
      requests.push({ path: req.url ?? "", contentType, body })
      if (contentType.startsWith("application/json")) {
        const parsed = JSON.parse(body.toString("utf8")) as ExportRequest
        for (const resourceSpans of parsed.resourceSpans) {
          const resource = record(resourceSpans.resource.attributes)
          for (const scope of resourceSpans.scopeSpans) {
            for (const span of scope.spans) {
              spans.push({
                traceId: span.traceId,
                spanId: span.spanId,
                parentSpanId: span.parentSpanId === undefined || span.parentSpanId === "" ? undefined : span.parentSpanId,
                name: span.name,
                kind: span.kind,
                attributes: record(span.attributes),
                events: (span.events ?? []).map((e) => ({ name: e.name, attributes: record(e.attributes) })),
                statusCode: span.status?.code,
                resource
              })
            }
          }
        }
      }
      res.writeHead(200, { "content-type": "application/json" })
      res.end("{}")
    })
  })
  await new Promise<void>((listening) => server.listen(0, "127.0.0.1", () => listening()))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    requests,
    /** The spans whose parent is `span`. */
    childrenOf: (span: ReceivedSpan) => spans.filter((s) => s.parentSpanId === span.spanId && s.traceId === span.traceId),
    /** Every span under `span`, at any depth. */
    descendantsOf: (span: ReceivedSpan): ReadonlyArray<ReceivedSpan> => {
      const found: Array<ReceivedSpan> = []
      const visit = (parent: ReceivedSpan) => {
        for (const child of spans.filter((s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId)) {
          found.push(child)
          visit(child)
        }
      }
      visit(span)
      return found
    },
    close: () => new Promise<void>((closed) => server.close(() => closed()))
  }
}
