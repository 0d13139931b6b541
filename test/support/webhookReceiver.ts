import { randomBytes } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Webhook } from "standardwebhooks"

/** A `whsec_` secret, as an operator generates one. */
export const newWebhookSecret = () => `whsec_${randomBytes(32).toString("base64")}`

export interface Receipt {
  readonly id: string
  readonly timestamp: string
  readonly signature: string
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly body: string
  /** The body as verified by the reference library with one of the receiver's secrets; undefined when none verified it. */
  readonly payload: WebhookBody | undefined
  /** What the receiver answered: a status, or "hang" (no answer until released). */
  readonly answered: number | "hang"
}

export interface WebhookBody {
  readonly type: string
  readonly id: string
  readonly timestamp: string
  readonly data: {
    readonly user_id: string
    readonly platform: string
    readonly account_id: string
    readonly status: string
    readonly reason: string | null
    readonly details: Record<string, unknown>
  }
}

/** What the receiver does with a request: answer with a status, or hold it unanswered. */
export type Behaviour = (receipt: { readonly id: string; readonly attempt: number }) => number | "hang"

/**
 * An application's webhook endpoint on node:http: every request is recorded, and verified
 * with the Standard Webhooks reference library against each of `secrets`.
 */
export const startReceiver = async (secrets: ReadonlyArray<string>, options: { readonly port?: number } = {}) => {
  const verifiers = secrets.map((secret) => new Webhook(secret))
  const receipts: Array<Receipt> = []
  const held = new Set<ServerResponse>()
  let behaviour: Behaviour = () => 200
  const waiters = new Set<() => void>()
  const wake = () => {
    for (const w of waiters) w()
  }

  const handle = (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8")
      const header = (name: string) => String(request.headers[name] ?? "")
      const id = header("webhook-id")
      let payload: WebhookBody | undefined
      for (const verifier of verifiers) {
        try {
          payload = verifier.verify(body, {
            "webhook-id": id,
            "webhook-timestamp": header("webhook-timestamp"),
            "webhook-signature": header("webhook-signature")
          }) as WebhookBody
          break
        } catch {
          // not this secret
        }
      }
      const attempt = receipts.filter((r) => r.id === id).length + 1
      const answer = behaviour({ id, attempt })
      receipts.push({
        id,
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        headers: { ...request.headers },
        body,
        payload,
        answered: answer
      })
      wake()
      if (answer === "hang") {
        held.add(response)
        response.on("close", () => held.delete(response))
        return
      }
      response.writeHead(answer, { "content-type": "text/plain" }).end("ok")
    })
  }

  let server: Server = createServer(handle)
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject)
      server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port))
    })
  const port = await listen(options.port ?? 0)

  const stop = () =>
    new Promise<void>((resolve) => {
      for (const response of held) response.destroy()
      server.closeAllConnections()
      server.close(() => resolve())
    })

  return {
    url: `http://127.0.0.1:${port}/hooks`,
    port,
    receipts,
    /** Verified receipts only. */
    verified: () => receipts.filter((r) => r.payload !== undefined),
    setBehaviour: (next: Behaviour) => {
      behaviour = next
    },
    /** Answers every held request with `status`. */
    release: (status = 200) => {
      for (const response of held) response.writeHead(status).end("ok")
      held.clear()
    },
    /** Stops listening: connections are refused until `restart`. */
    stop,
    /** Listens again on the same port. */
    restart: async () => {
      server = createServer(handle)
      await listen(port)
    },
    /** Resolves once `predicate` holds of the receipts, failing after `timeoutMs`. */
    waitFor: (predicate: (receipts: ReadonlyArray<Receipt>) => boolean, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        if (predicate(receipts)) return resolve()
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`the receiver did not get what was awaited in ${timeoutMs} ms (${receipts.length} receipts)`))
        }, timeoutMs)
        const check = () => {
          if (predicate(receipts)) {
            clearTimeout(timer)
            waiters.delete(check)
            resolve()
          }
        }
        waiters.add(check)
      }),
    close: stop
  }
}

export type Receiver = Awaited<ReturnType<typeof startReceiver>>
