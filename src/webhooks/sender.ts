import { Duration, Effect } from "effect"
import { Agent, request } from "undici"
import type { SignedHeaders } from "../crypto/webhookSignature.js"

/** How one attempt ended: the endpoint's HTTP status, or why none came back. */
export interface Answer {
  readonly status: number | null
  /** timeout, refused, or another short reason; never the body, never the URL. */
  readonly error: string | null
}

/** An error's short name for the delivery row and the metric: no URL, no body. */
const reasonOf = (error: unknown): string => {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused"
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
      return "connection reset"
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found"
    case "UND_ERR_CONNECT_TIMEOUT":
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return "timeout"
    default:
      return code === undefined ? "request failed" : `request failed (${code})`
  }
}

/**
 * Posts deliveries to one endpoint over kept-alive connections, at most `concurrency` at once.
 * Redirects are not followed (a 3xx is a failed attempt). The agent is closed with the scope.
 */
export const makeSender = (url: URL, timeout: Duration.Duration, concurrency: number) =>
  Effect.gen(function*() {
    const ms = Duration.toMillis(timeout)
    const agent = yield* Effect.acquireRelease(
      Effect.sync(() => new Agent({ connections: concurrency, connect: { timeout: ms }, headersTimeout: ms, bodyTimeout: ms })),
      (agent) => Effect.promise(() => agent.destroy().catch(() => undefined))
    )
    /**
     * One attempt, as a plain promise that never rejects. On the hot path of every delivery, the
     * timeout is the agent's: `timeout` to connect, to receive the answer's headers, and between
     * two chunks of its body (of which at most 64 KiB are read).
     */
    const post = async (headers: SignedHeaders, body: string): Promise<Answer> => {
      try {
        const response = await request(url, {
          method: "POST",
          dispatcher: agent,
          body,
          headers: { ...headers, "content-type": "application/json", "user-agent": "oauth-integrations-webhooks" }
        })
        await response.body.dump({ limit: 64 * 1024 })
        return { status: response.statusCode, error: null }
      } catch (error) {
        return { status: null, error: reasonOf(error) }
      }
    }
    return { post } as const
  })
