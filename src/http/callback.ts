import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Either } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { Integrations } from "../integrations/Integrations.js"
import { Api } from "./Api.js"
import { popupPage } from "./callbackPage.js"

/** A machine-readable reason for the front end: never a token, a code or the platform's text. */
export const callbackReason = (error: { readonly _tag: string; readonly reason?: unknown; readonly error?: unknown }): string => {
  switch (error._tag) {
    case "InvalidState":
      return `state_${String(error.reason).replace(/-/g, "_")}`
    case "StateExpired":
      return "state_expired"
    case "AuthorizationDenied":
      return error.error === "access_denied" ? "access_denied" : "authorization_failed"
    case "InvalidCallback":
      return "code_missing"
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
    default:
      return "service_unavailable"
  }
}

const securityHeaders = {
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff"
}

export const CallbackLive = HttpApiBuilder.group(Api, "oauth", (handlers) =>
  Effect.gen(function*() {
    const integrations = yield* Integrations
    const { frontendUrl } = yield* AppConfig
    return handlers.handle("callback", ({ path, urlParams }) =>
      Effect.gen(function*() {
        const result = yield* integrations.completeCallback(path.platform, {
          state: urlParams.state,
          code: urlParams.code,
          error: urlParams.error
        })
        const status = Either.isRight(result.outcome) ? "connected" as const : "error" as const
        const reason = Either.isLeft(result.outcome) ? callbackReason(result.outcome.left) : null
        if (result.mode === "popup") {
          const page = popupPage({ type: "oauth-integrations:callback", platform: path.platform, status, reason }, frontendUrl.origin)
          return HttpServerResponse.html(page.html).pipe(
            HttpServerResponse.setHeaders({ ...securityHeaders, "content-security-policy": page.contentSecurityPolicy })
          )
        }
        const target = new URL(result.returnTo ?? frontendUrl.toString())
        target.searchParams.set("platform", path.platform)
        target.searchParams.set("status", status)
        if (reason !== null) target.searchParams.set("reason", reason)
        return HttpServerResponse.redirect(target.toString(), { status: 302, headers: securityHeaders })
      }))
  }))
