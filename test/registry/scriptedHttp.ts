import { HttpClient, HttpClientError, type HttpClientRequest, HttpClientResponse, UrlParams } from "@effect/platform"
import { Duration, Effect, Either, Layer, Option, Redacted } from "effect"
import { PlatformHttp, withClockTimeout } from "../../src/oauth/PlatformHttp.js"
import { pkceByDefault } from "../../src/oauth/settings.js"
import type { PlatformDefinition, PlatformSettings } from "../../src/platforms/definition.js"

/** A request as the platform received it. */
export interface Sent {
  readonly method: string
  readonly url: URL
  readonly headers: Readonly<Record<string, string>>
  readonly contentType: string | undefined
  readonly body: string
}

/** An HTTP answer: a status with a JSON value or raw text, after an optional delay. */
export interface Reply {
  readonly status: number
  readonly json?: unknown
  readonly text?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly delay?: Duration.DurationInput
}

/** What the platform does with a request: answers it, or the connection fails. */
export type Answer = Reply | "network-error"

/**
 * An HttpClient that answers every request with `answer(request)` and records what was
 * sent: the platform as a unit test sees it, with no server. Delays run on the Clock, and so
 * do the timeouts of the clients made from it (`timed`, and the registry's through
 * `platformHttp`), so a TestClock drives them. Like the service's own client it adds nothing
 * to the request (no tracing headers): the request sent is the request made.
 */
export const scriptedHttp = (answer: (sent: Sent, index: number) => Answer) => {
  const sent: Array<Sent> = []
  const respond = (request: HttpClientRequest.HttpClientRequest) =>
    Effect.gen(function*() {
      const url = UrlParams.makeUrl(request.url, request.urlParams, request.hash)
      if (Either.isLeft(url)) return yield* new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause: url.left })
      const body = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""
      const contentType = request.body._tag === "Uint8Array" ? request.body.contentType : undefined
      const recorded: Sent = { method: request.method, url: url.right, headers: request.headers, contentType, body }
      sent.push(recorded)
      const a = answer(recorded, sent.length - 1)
      if (a === "network-error") return yield* new HttpClientError.RequestError({ request, reason: "Transport" })
      if (a.delay !== undefined) yield* Effect.sleep(a.delay)
      const text = a.json !== undefined ? JSON.stringify(a.json) : a.text ?? ""
      const type = a.json !== undefined ? "application/json" : "text/html"
      // A 204 or 304 has no body at all.
      const payload = a.status === 204 || a.status === 304 ? null : text
      return HttpClientResponse.fromWeb(request, new Response(payload, { status: a.status, headers: { "content-type": type, ...a.headers } }))
    })
  const client = HttpClient.makeWith<never, never, HttpClientError.HttpClientError, never>(
    (prepared) => Effect.flatMap(prepared, respond),
    Effect.succeed
  )
  return {
    /** A platform's client with its request timeout, on the Clock. */
    timed: (timeout: Duration.Duration) => withClockTimeout(client, timeout),
    /** Every platform's client, as the registry asks for them. */
    platformHttp: PlatformHttp.onClock.pipe(Layer.provide(Layer.succeed(HttpClient.HttpClient, client))),
    sent
  }
}

/** A token endpoint's successful answer. */
export const tokens = (extra: Record<string, unknown> = {}): Reply => ({
  status: 200,
  json: { access_token: "at-1", refresh_token: "rt-1", expires_in: 3600, token_type: "Bearer", ...extra }
})

/** An RFC 6749 §5.2 error answer. */
export const oauthError = (error: string, status = 400): Reply => ({ status, json: { error, error_description: "as the platform said" } })

/**
 * A plain OAuth 2.0 platform definition for unit tests (confidential client, form bodies,
 * PKCE, no revocation), its endpoints under https://<key>.example unless overridden.
 */
export const plainDefinition = (key: string, overrides: Partial<PlatformDefinition> = {}): PlatformDefinition => ({
  key,
  displayName: key.toUpperCase(),
  endpoints: { authorize: `https://${key}.example/authorize`, token: `https://${key}.example/token` },
  scopes: ["read"],
  scopeSeparator: " ",
  authorizeParams: {},
  pkce: "supported",
  client: "confidential",
  clientAuth: "body",
  tokenBody: "form",
  paramCase: "snake",
  refresh: "token",
  invalidGrantTolerance: 1,
  revocation: false,
  ...overrides
})

/** A plain OAuth 2.0 platform for unit tests: its authorize URL is built locally. */
export const acme: PlatformDefinition = plainDefinition("acme", {
  displayName: "Acme",
  endpoints: { authorize: "https://acme.example/authorize", token: "https://acme.example/token", revoke: "https://acme.example/revoke" },
  scopes: ["read", "write"],
  revocation: true
})

/** Checked settings for `definition`, as readSettings would make them from a complete configuration. */
export const settingsOf = (definition: PlatformDefinition, overrides: Partial<PlatformSettings> = {}): PlatformSettings => ({
  clientId: `${definition.key}-id`,
  clientSecret: definition.client === "confidential" ? Option.some(Redacted.make(`${definition.key}-secret`)) : Option.none(),
  redirectUri: `https://app.example.com/oauth/${definition.key}/callback`,
  urls: { ...definition.endpoints },
  overridden: new Set(),
  scopes: definition.scopes,
  tokenBody: definition.tokenBody,
  pkce: pkceByDefault(definition.pkce),
  timeout: Duration.seconds(10),
  ...overrides
})
