import { Schema } from "effect"
import {
  AuthorizeRequest,
  AuthUrlPayloadJson,
  ConfirmRequest,
  ConnectionsResponse,
  ConnectionStatusJson,
  ConnectSessionResponse,
  CreateSessionRequest,
  DisconnectedResponse,
  StepFiveResponse,
  TokenResponseJson
} from "../http/schemas.js"

export interface ClientOptions {
  /** Where the service answers, e.g. http://oauth-integrations:8080 */
  readonly baseUrl: string
  /** A key from API_KEYS (TOKEN_API_KEYS for `token`). */
  readonly apiKey: string
  /** Default: the global fetch. */
  readonly fetch?: typeof globalThis.fetch
}

/** An answer other than a 2xx: its status, the error's `_tag` and its whole JSON body. */
export class OAuthIntegrationsError extends Error {
  constructor(
    readonly status: number,
    readonly tag: string,
    readonly body: Readonly<Record<string, unknown>>
  ) {
    super(`${tag} (${status})${typeof body["message"] === "string" ? `: ${body["message"]}` : ""}`)
    this.name = "OAuthIntegrationsError"
  }
}

type Json<S extends Schema.Schema.Any> = Schema.Schema.Type<S>

/**
 * A client for back ends that do not use Effect: plain promises over fetch for the common
 * calls. Each answer is checked against the contract's own response schema (the ones the
 * server encodes with), so a client and a server that drifted apart fail loudly, not subtly.
 */
export const createClient = (options: ClientOptions) => {
  const base = options.baseUrl.replace(/\/+$/, "")
  const send = options.fetch ?? globalThis.fetch
  const segment = encodeURIComponent

  const call = async <S extends Schema.Schema.AnyNoContext>(method: string, path: string, answer: S, body?: unknown): Promise<Json<S>> => {
    const response = await send(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${options.apiKey}`,
        ...(body === undefined ? {} : { "content-type": "application/json" })
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const text = await response.text()
    let json: unknown
    try {
      json = text === "" ? {} : JSON.parse(text)
    } catch {
      json = { message: text.slice(0, 200) }
    }
    if (!response.ok) {
      const error = (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown>
      throw new OAuthIntegrationsError(response.status, typeof error["_tag"] === "string" ? error["_tag"] : "HttpError", error)
    }
    return Schema.decodeUnknownSync(answer)(json) as Json<S>
  }

  return {
    /** Every platform's status for the user. */
    statuses: (userId: string) => call("GET", `/v1/users/${segment(userId)}/connections`, ConnectionsResponse),
    /** One platform's status. */
    status: (userId: string, platform: string) => call("GET", `/v1/users/${segment(userId)}/connections/${segment(platform)}`, ConnectionStatusJson),
    /** Whether at least one platform is connected. */
    stepFive: (userId: string) => call("GET", `/v1/users/${segment(userId)}/onboarding/step-5`, StepFiveResponse),
    /** Where to send the user to connect a platform. */
    authorize: (userId: string, platform: string, body: typeof AuthorizeRequest.Encoded = {}) =>
      call("POST", `/v1/users/${segment(userId)}/connections/${segment(platform)}/authorize`, AuthUrlPayloadJson, body),
    /** Confirms a pending grant for the user logged in where the browser landed. */
    confirm: (userId: string, platform: string, confirmation: typeof ConfirmRequest.Encoded["confirmation"]) =>
      call("POST", `/v1/users/${segment(userId)}/connections/${segment(platform)}/confirm`, ConnectionStatusJson, { confirmation }),
    /** A fresh access token (a key from TOKEN_API_KEYS). */
    token: (userId: string, platform: string) => call("GET", `/v1/users/${segment(userId)}/connections/${segment(platform)}/token`, TokenResponseJson),
    /** Revokes at the platform where it can and forgets the tokens. */
    disconnect: (userId: string, platform: string) =>
      call("DELETE", `/v1/users/${segment(userId)}/connections/${segment(platform)}`, DisconnectedResponse),
    /** A session of the connect page for one user: give `connect_url` to that user's browser only. */
    createConnectSession: (body: typeof CreateSessionRequest.Encoded) => call("POST", "/v1/connect/sessions", ConnectSessionResponse, body)
  } as const
}

export type Client = ReturnType<typeof createClient>
