import { createHash, randomBytes } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect } from "effect"

/** A request as the fake received it. */
export interface Recorded {
  readonly endpoint: string
  readonly method: string
  readonly path: string
  readonly query: Readonly<Record<string, string>>
  readonly headers: Readonly<Record<string, string>>
  readonly contentType: string | undefined
  readonly body: Readonly<Record<string, unknown>>
  readonly rawBody: string
}

export type Behaviour =
  | "ok"
  | "invalid_grant"
  | "invalid_client"
  | "server_error"
  | "unavailable"
  | "rate_limited"
  | "malformed"
  | "html"
  | "slow"
  | "unauthorized"
  | "forbidden"

export interface BehaviourOptions {
  /** Only for the next N calls; then the endpoint answers as before. */
  readonly times?: number
  readonly retryAfterSeconds?: number
  readonly delayMs?: number
}

interface Scripted {
  readonly behaviour: Behaviour
  readonly options: BehaviourOptions
  remaining: number
}

export interface Reply {
  readonly status: number
  readonly json?: unknown
  readonly text?: string
  readonly headers?: Readonly<Record<string, string>>
}

export type Handler = (request: Recorded) => Reply | Promise<Reply>

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export const oauthError = (error: string, description: string, status = 400): Reply => ({
  status,
  json: { error, error_description: description }
})

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

const parseBody = (contentType: string | undefined, raw: string): Record<string, unknown> => {
  if (raw === "") return {}
  if (contentType?.includes("application/json") === true) {
    const parsed: unknown = JSON.parse(raw)
    return typeof parsed === "object" && parsed !== null ? { ...parsed } : {}
  }
  return Object.fromEntries(new URLSearchParams(raw))
}

export const randomToken = (prefix: string) => `${prefix}-${randomBytes(18).toString("base64url")}`

export const s256 = (verifier: string) => createHash("sha256").update(verifier, "ascii").digest("base64url")

/**
 * A small HTTP server on 127.0.0.1 and an ephemeral port: routes by path to endpoint
 * handlers, records every request, and lets tests script an endpoint's answers.
 */
export class FakeServer {
  readonly requests: Array<Recorded> = []
  private readonly scripts = new Map<string, Array<Scripted>>()
  private server = createServer((req, res) => void this.handle(req, res))
  baseUrl = ""

  constructor(
    private readonly routes: Readonly<Record<string, { readonly endpoint: string; readonly handler: Handler }>>,
    private readonly latency: (endpoint: string) => number = () => 0
  ) {}

  start(): Promise<this> {
    return new Promise((resolve) => {
      this.server.listen(0, "127.0.0.1", () => {
        this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
        resolve(this)
      })
    })
  }

  close(): Promise<void> {
    this.server.closeAllConnections()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }

  url(path: string) {
    return `${this.baseUrl}${path}`
  }

  /**
   * Scripts an endpoint: `behaviour` for the next `times` calls (then back to what it did
   * before), or from now on.
   */
  setBehaviour(endpoint: string, behaviour: Behaviour, options: BehaviourOptions = {}) {
    const scripted = { behaviour, options, remaining: options.times ?? Infinity }
    const list = this.scripts.get(endpoint) ?? []
    if (options.times === undefined) this.scripts.set(endpoint, [scripted])
    else this.scripts.set(endpoint, [...list.filter((s) => s.remaining !== Infinity), scripted, ...list.filter((s) => s.remaining === Infinity)])
  }

  requestsTo(endpoint: string) {
    return this.requests.filter((r) => r.endpoint === endpoint)
  }

  reset() {
    this.requests.length = 0
    this.scripts.clear()
  }

  private next(endpoint: string): Scripted | undefined {
    const list = this.scripts.get(endpoint)
    if (list === undefined) return undefined
    while (list.length > 0 && list[0] !== undefined && list[0].remaining <= 0) list.shift()
    const head = list[0]
    if (head !== undefined) head.remaining--
    return head
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? "/", this.baseUrl)
    const route = this.routes[`${req.method} ${url.pathname}`]
    const rawBody = await readBody(req)
    const contentType = req.headers["content-type"]
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : v ?? ""]))
    let body: Record<string, unknown> = {}
    try {
      body = parseBody(contentType, rawBody)
    } catch {
      return this.send(res, { status: 400, json: { error: "invalid_request", error_description: "malformed body" } })
    }
    const recorded: Recorded = {
      endpoint: route?.endpoint ?? "unknown",
      method: req.method ?? "",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers,
      contentType,
      body,
      rawBody
    }
    this.requests.push(recorded)
    if (route === undefined) return this.send(res, { status: 404, text: "not found" })
    const latency = this.latency(route.endpoint)
    if (latency > 0) await sleep(latency)
    const script = this.next(route.endpoint)
    const scripted = script === undefined ? undefined : await this.scripted(script)
    return this.send(res, scripted ?? await route.handler(recorded))
  }

  private async scripted(script: Scripted): Promise<Reply | undefined> {
    switch (script.behaviour) {
      case "ok":
        return undefined
      case "slow":
        await sleep(script.options.delayMs ?? 1000)
        return undefined
      case "invalid_grant":
        return oauthError("invalid_grant", "Token has been expired or revoked.")
      case "invalid_client":
        return oauthError("invalid_client", "The OAuth client was not found.", 401)
      case "server_error":
        return { status: 500, json: { error: "internal_failure" } }
      case "unavailable":
        return { status: 503, text: "Service Unavailable" }
      case "rate_limited":
        return { status: 429, json: { error: "rate_limited" }, headers: { "retry-after": String(script.options.retryAfterSeconds ?? 2) } }
      case "malformed":
        // Cut short: what a proxy or a crashing platform can send under a JSON content type.
        return { status: 200, text: '{"access_token": "abc"', headers: { "content-type": "application/json" } }
      case "html":
        return { status: 200, text: "<html>oops</html>", headers: { "content-type": "text/html" } }
      case "unauthorized":
        return { status: 401, json: { error: "invalid_token" } }
      case "forbidden":
        return { status: 403, json: { error: "forbidden" } }
    }
  }

  private send(res: ServerResponse, reply: Reply) {
    const headers: Record<string, string> = { ...reply.headers }
    let body = ""
    if (reply.json !== undefined) {
      body = JSON.stringify(reply.json)
      headers["content-type"] ??= "application/json"
    } else if (reply.text !== undefined) {
      body = reply.text
      headers["content-type"] ??= "text/plain"
    }
    res.writeHead(reply.status, headers)
    res.end(body)
  }
}

/** A fake as a scoped Effect resource. */
export const scoped = <A extends { close: () => Promise<void> }>(start: () => Promise<A>) =>
  Effect.acquireRelease(Effect.promise(start), (fake) => Effect.promise(() => fake.close()))
