import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Effect, Schema } from "effect"
import type { PlatformDefinition } from "../platforms/definition.js"

/**
 * RFC 9207 §2.4: the authorization response names another issuer than the platform's (a
 * mix-up: the code was issued elsewhere), or lacks the `iss` its issuer always sends. Nothing
 * is exchanged. The value received is not kept: it came from the URL.
 */
export class IssuerMismatch extends Schema.TaggedError<IssuerMismatch>()(
  "IssuerMismatch",
  { platform: Schema.String, reason: Schema.Literal("different", "missing") },
  HttpApiSchema.annotations({ status: 400 })
) {
  override get message() {
    return `the authorization response ${this.reason === "missing" ? "has no iss" : "names another issuer"} (RFC 9207)`
  }
}

/**
 * What a log line may say of an `iss` received: its origin when it is an http(s) URL (a host
 * holds no control characters or markup once parsed), else only that it was not one.
 */
export const issuerForLog = (iss: string): string => {
  try {
    const url = new URL(iss)
    if (url.protocol === "https:" || url.protocol === "http:") return url.origin.slice(0, 100)
  } catch {
    // falls through
  }
  return "(not an http(s) URL)"
}

/**
 * Checks the `iss` of an authorization response, error responses included, before anything
 * else of it is used. A platform that names no issuer is not checked: its own callback path
 * is then the mix-up defence (RFC 9700 §4.4.2).
 */
export const checkIssuer = (definition: PlatformDefinition, iss: string | undefined): Effect.Effect<void, IssuerMismatch> => {
  const issuer = definition.issuer
  if (issuer === undefined) return Effect.void
  if (iss === undefined) {
    return issuer.alwaysSent ? Effect.fail(new IssuerMismatch({ platform: definition.key, reason: "missing" })) : Effect.void
  }
  // Simple string comparison (RFC 9207 §2.4, RFC 3986 §6.2.1): no normalisation.
  if (iss === issuer.identifier) return Effect.void
  return Effect.logWarning("authorization response from another issuer refused").pipe(
    Effect.annotateLogs({ platform: definition.key, expected: issuer.identifier, received: issuerForLog(iss) }),
    Effect.zipRight(Effect.fail(new IssuerMismatch({ platform: definition.key, reason: "different" })))
  )
}
