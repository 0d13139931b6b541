import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Either, Redacted } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { type CallbackError, type CallbackResult, Connect } from "../integrations/Connect.js"
import { ProviderRegistry } from "../registry/ProviderRegistry.js"
import { Api } from "./Api.js"
import { type CallbackMessage, popupPage } from "./callbackPage.js"

/** A machine-readable reason for the front end: never a token, a code or the platform's text. */
export const callbackReason = (error: { readonly _tag: string; readonly reason?: unknown; readonly error?: unknown }): string => {
  switch (error._tag) {
    case "InvalidState":
      return `state_${String(error.reason).replace(/-/g, "_")}`
    case "StateExpired":
      return "state_expired"
    case "AuthorizationDenied":
      return error.error === "access_denied" || error.error === "invalid_request" ? error.error : "authorization_failed"
    case "InvalidCallback":
      return "code_missing"
    case "IssuerMismatch":
      return "issuer_mismatch"
    case "InvalidGrant":
      return "code_rejected"
    case "InvalidClient":
      return "client_rejected"
    case "PlatformNotConfigured":
      return "platform_not_configured"
    case "ProviderUnavailable":
    case "RateLimited":
    case "CircuitOpen":
      return "platform_unavailable"
    case "ProviderResponseInvalid":
      return "platform_response_invalid"
    // Our storage failed, also after the platform issued tokens (the grant is then revoked): try again later.
    case "DatabaseUnavailable":
    default:
      return "service_unavailable"
  }
}

/** The most a platform sends in each parameter; longer, or repeated, and the request is malformed. */
const LIMITS = { state: 512, code: 4096, error: 256, iss: 2048 } as const

type Param = string | ReadonlyArray<string> | undefined

const wellFormed = (value: Param, max: number): value is string | undefined =>
  value === undefined || typeof value === "string" && value.length <= max

/** How a flow began, from the callback's result or, for a refused state, from the state itself. */
const origin = (result: CallbackResult<CallbackError>) => {
  const refused = Either.isLeft(result.outcome) ? result.outcome.left : undefined
  const stored = refused?._tag === "InvalidState" || refused?._tag === "StateExpired" ? refused : undefined
  return { mode: result.mode ?? stored?.mode ?? null, returnTo: result.returnTo ?? stored?.returnTo ?? null }
}

export const CallbackLive = HttpApiBuilder.group(Api, "oauth", (handlers) =>
  Effect.gen(function*() {
    const connect = yield* Connect
    const registry = yield* ProviderRegistry
    const { frontendUrl } = yield* AppConfig

    const answer = (platform: string, result: CallbackResult<CallbackError> | null) => {
      const success = result !== null && Either.isRight(result.outcome) ? result.outcome.right : undefined
      const status = success === undefined ? "error" as const : success._tag === "Pending" ? "pending" as const : "connected" as const
      const reason = result === null ? "invalid_request" : Either.isLeft(result.outcome) ? callbackReason(result.outcome.left) : null
      // The one-time code the application's back end confirms for the user logged in where the browser lands.
      const confirmation = success?._tag === "Pending" ? Redacted.value(success.confirmation) : null
      const { mode, returnTo } = result === null ? { mode: null, returnTo: null } : origin(result)
      if (mode === "popup") {
        const message: CallbackMessage = { type: "oauth-integrations:callback", platform, status, reason, ...(confirmation === null ? {} : { confirmation }) }
        const page = popupPage(message, frontendUrl.origin)
        return HttpServerResponse.html(page.html).pipe(HttpServerResponse.setHeader("content-security-policy", page.contentSecurityPolicy))
      }
      const target = new URL(returnTo ?? frontendUrl.toString())
      target.searchParams.set("platform", platform)
      target.searchParams.set("status", status)
      if (reason !== null) target.searchParams.set("reason", reason)
      if (confirmation !== null) target.searchParams.set("confirmation", confirmation)
      // Referrer-Policy and Cache-Control are set on every callback answer by callbackHeaders.
      return HttpServerResponse.redirect(target.toString(), { status: 302 })
    }

    return handlers.handle("callback", ({ path, urlParams }) =>
      Effect.gen(function*() {
        yield* registry.definition(path.platform)
        const { code, error, iss, state } = urlParams
        // Without a readable state there is no flow to answer for; with one, a malformed
        // request still ends that flow (the state is burnt), as invalid_request.
        const wellFormedRest = wellFormed(code, LIMITS.code) && wellFormed(error, LIMITS.error) && wellFormed(iss, LIMITS.iss)
        if (!wellFormed(state, LIMITS.state) || !wellFormedRest && state === undefined) return answer(path.platform, null)
        const params = wellFormedRest ? { state, code, error, iss } : { state, error: "invalid_request" }
        return answer(path.platform, yield* connect.completeCallback(path.platform, params))
      }).pipe(
        // Answered here rather than by the framework, so that it carries the callback's headers too.
        Effect.catchTag("UnknownPlatform", (e) =>
          Effect.succeed(HttpServerResponse.unsafeJson({ _tag: e._tag, platform: e.platform, known: e.known }, { status: 404 }))
        )
      ))
  }))
