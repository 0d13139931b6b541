import { readFileSync } from "node:fs"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import type { HttpMethod } from "@effect/platform/HttpMethod"
import * as OpenApi from "@effect/platform/OpenApi"
import type * as JsonSchema from "@effect/platform/OpenApiJsonSchema"
import { Context, Schema } from "effect"
import {
  CircuitOpen,
  ConfirmationRefused,
  ConnectionUnreadable,
  DatabaseUnavailable,
  DeliveryNotFound,
  EndpointNotConfigured,
  InvalidClient,
  InvalidConfirmation,
  InvalidGrant,
  InvalidReturnTo,
  NotConnected,
  NotInSession,
  PlatformNotConfigured,
  ProviderResponseInvalid,
  ProviderUnavailable,
  RateLimited,
  ReauthRequired,
  RefreshInProgress,
  SessionInvalid,
  UnknownPlatform
} from "../domain/errors.js"
import * as Answers from "./answers.js"
import { addWebhooksToSpec } from "./webhookDocs.js"
import type { StoredSession } from "../db/ConnectSessionRepository.js"
import { AuthorizeRequest, CallbackQuery, ConfirmRequest, CreateSessionRequest, DeliveriesQuery, SessionAuthorizeRequest, DeliveryPath, EventsQuery, ImportRequest, PlatformPath, UserPath, UserPlatformPath } from "./schemas.js"

/** The document's version is the package's (package.json at the package root, two levels up from src/http and dist/http). */
const packageVersion = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { readonly version: string }).version

export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {}

export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()(
  "PayloadTooLarge",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 413 })
) {}

/** A request body that is not application/json: refused before anything parses it. */
export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()(
  "UnsupportedMediaType",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 415 })
) {}

/** A path, query or body that does not decode: the field, and a short message. */
export class BadRequest extends Schema.TaggedError<BadRequest>()(
  "BadRequest",
  { field: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** Who is calling: whether its key may fetch access tokens. */
export class Caller extends Context.Tag("Integrations/Caller")<Caller, { readonly tokenScope: boolean }>() {}

/** `Authorization: Bearer <API key>`, compared in constant time against API_KEYS and TOKEN_API_KEYS. */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("Integrations/Authentication", {
  failure: Unauthorized,
  provides: Caller,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/**
 * What any request with a body may be refused for before its handler runs: a body that is not
 * JSON or does not read (400), one over 64 KiB (413), another content type (415).
 */
const withBodyErrors = <Name extends string, Method extends HttpMethod, Path, UrlParams, Payload, Headers, Success, Error, R, RE>(
  endpoint: HttpApiEndpoint.HttpApiEndpoint<Name, Method, Path, UrlParams, Payload, Headers, Success, Error, R, RE>
) => endpoint.addError(BadRequest).addError(PayloadTooLarge).addError(UnsupportedMediaType)

/** What a call to the platform may fail with (ProviderError), on the operations that make one. */
const withPlatformErrors = <Name extends string, Method extends HttpMethod, Path, UrlParams, Payload, Headers, Success, Error, R, RE>(
  endpoint: HttpApiEndpoint.HttpApiEndpoint<Name, Method, Path, UrlParams, Payload, Headers, Success, Error, R, RE>
) =>
  endpoint
    .addError(InvalidGrant)
    .addError(InvalidClient)
    .addError(ProviderResponseInvalid)
    .addError(ProviderUnavailable)
    .addError(RateLimited)
    .addError(CircuitOpen)

export class PlatformsGroup extends HttpApiGroup.make("platforms")
  .add(
    HttpApiEndpoint.get("list", "/v1/platforms")
      .addSuccess(Answers.Platforms)
      .annotateContext(OpenApi.annotations({
        summary: "List the platforms",
        description: "Every platform: key, display name, configured, not configured or misconfigured with the variables to fix, breaker health"
      }))
  )
  .middleware(Authentication)
  .annotate(OpenApi.Description, "The platforms this service offers and whether each is configured")
{}

export class ConnectionsGroup extends HttpApiGroup.make("connections")
  .add(
    HttpApiEndpoint.get("list", "/v1/users/:user_id/connections")
      .setPath(UserPath)
      .addSuccess(Answers.Connections)
      .addError(BadRequest)
      .addError(DatabaseUnavailable)
      .annotateContext(OpenApi.annotations({
        summary: "List a user's connections",
        description: "The status of every platform for a user (one database round trip, cached)"
      }))
  )
  .add(
    HttpApiEndpoint.get("status", "/v1/users/:user_id/connections/:platform")
      .setPath(UserPlatformPath)
      .addSuccess(Answers.ConnectionStatus)
      .addError(BadRequest)
      .addError(UnknownPlatform)
      .addError(DatabaseUnavailable)
      .annotateContext(OpenApi.annotations({
        summary: "Get a connection",
        description: "One platform's status for a user: whether it is connected, its status, accounts, details, error, and whether the platform is degraded"
      }))
  )
  .add(
    HttpApiEndpoint.post("authorize", "/v1/users/:user_id/connections/:platform/authorize")
      .setPath(UserPlatformPath)
      .setPayload(AuthorizeRequest)
      .addSuccess(Answers.AuthUrl)
      .pipe(withBodyErrors, withPlatformErrors)
      .addError(UnknownPlatform)
      .addError(PlatformNotConfigured)
      .addError(InvalidReturnTo)
      .addError(DatabaseUnavailable)
      .annotateContext(OpenApi.annotations({
        summary: "Start a connection",
        description: "Starts a connection: the URL to send the user to. return_to must be on FRONTEND_URL's origin or OAUTH_ALLOWED_ORIGINS"
      }))
  )
  .add(
    HttpApiEndpoint.post("confirm", "/v1/users/:user_id/connections/:platform/confirm")
      .setPath(UserPlatformPath)
      .setPayload(ConfirmRequest)
      .addSuccess(Answers.ConnectionStatus)
      .pipe(withBodyErrors)
      .addError(UnknownPlatform)
      .addError(InvalidConfirmation)
      .addError(ConfirmationRefused)
      .addError(DatabaseUnavailable)
      .annotateContext(OpenApi.annotations({
        summary: "Confirm a pending grant",
        description:
          "Confirms a pending grant for the user logged in where the browser landed (user_id): connected when the flow was started for that user; otherwise 403, and the grant is revoked"
      }))
  )
  .add(
    HttpApiEndpoint.post("refresh", "/v1/users/:user_id/connections/:platform/refresh")
      .setPath(UserPlatformPath)
      .addSuccess(Answers.ConnectionStatus)
      .pipe(withBodyErrors, withPlatformErrors)
      .addError(UnknownPlatform)
      .addError(PlatformNotConfigured)
      .addError(NotConnected)
      .addError(ReauthRequired)
      .addError(ConnectionUnreadable)
      .addError(RefreshInProgress)
      .addError(DatabaseUnavailable)
      .annotateContext(OpenApi.annotations({
        summary: "Refresh a connection",
        description: "Refreshes the access token now (validates it for platforms whose tokens do not expire)"
      }))
  )
  .add(
    HttpApiEndpoint.get("token", "/v1/users/:user_id/connections/:platform/token")
      .setPath(UserPlatformPath)
      .addSuccess(Answers.AccessToken)
      .pipe(withPlatformErrors)
      .addError(BadRequest)
      .addError(Forbidden)
      .addError(UnknownPlatform)
      .addError(PlatformNotConfigured)
      .addError(NotConnected)
      .addError(ReauthRequired)
      .addError(ConnectionUnreadable)
      .addError(RefreshInProgress)
      .addError(DatabaseUnavailable)
      .annotateContext(OpenApi.annotations({
        summary: "Get an access token",
        description:
          "A fresh access token, for trusted back ends (a key from TOKEN_API_KEYS). While the stored token is valid, a refresh that fails or is still under way gives it with refresh_error set"
      }))
  )
  .add(
    HttpApiEndpoint.put("import", "/v1/users/:user_id/connections/:platform/import")
      .setPath(UserPlatformPath)
      .setPayload(ImportRequest)
      .addSuccess(Answers.Imported)
      .pipe(withBodyErrors)
      .addError(Forbidden)
      .addError(UnknownPlatform)
      .addError(DatabaseUnavailable)
      .annotateContext(OpenApi.annotations({
        summary: "Import a connection",
        description:
          "Brings in a connection made elsewhere, stored sealed (a key from TOKEN_API_KEYS: it writes secrets). The same body twice changes nothing; a different one replaces the stored tokens only when it is newer (updated_at, or now)"
      }))
  )
  .add(
    HttpApiEndpoint.del("disconnect", "/v1/users/:user_id/connections/:platform")
      .setPath(UserPlatformPath)
      .addSuccess(Answers.Disconnected)
      .pipe(withBodyErrors)
      .addError(UnknownPlatform)
      .addError(NotConnected)
      .addError(DatabaseUnavailable)
      .annotateContext(OpenApi.annotations({
        summary: "Disconnect",
        description: "Revokes the grant at the platform where it can, and forgets the tokens"
      }))
  )
  .middleware(Authentication)
  .annotate(
    OpenApi.Description,
    "A user's connection to each platform: its status, connecting (authorize, then confirm), its access token, refreshing, importing and disconnecting it"
  )
{}

export class CallbackGroup extends HttpApiGroup.make("oauth")
  .add(
    HttpApiEndpoint.get("callback", "/oauth/:platform/callback")
      .setPath(PlatformPath)
      .setUrlParams(CallbackQuery)
      .addSuccess(HttpApiSchema.Empty(302))
      .addSuccess(Schema.String.pipe(HttpApiSchema.withEncoding({ kind: "Text", contentType: "text/html" })))
      .addError(BadRequest)
      .addError(UnknownPlatform)
      .annotateContext(OpenApi.annotations({
        summary: "OAuth callback",
        description:
          "The platform sends the browser here. Redirect mode: 302 to return_to with platform, status and reason. Popup mode: a page that posts the result to FRONTEND_URL's origin and closes."
      }))
  )
  .annotate(OpenApi.Description, "Where the platforms send the browser back after the user's authorisation; no API key")
{}

export class OnboardingGroup extends HttpApiGroup.make("onboarding")
  .add(
    HttpApiEndpoint.get("stepFive", "/v1/users/:user_id/onboarding/step-5")
      .setPath(UserPath)
      .addSuccess(Answers.StepFive)
      .addError(BadRequest)
      .addError(DatabaseUnavailable)
      .annotateContext(OpenApi.annotations({
        summary: "Onboarding step 5",
        description: "Whether at least one platform is connected"
      }))
  )
  .middleware(Authentication)
  .annotate(OpenApi.Description, "The onboarding check of a user's connections")
{}

export class EventsGroup extends HttpApiGroup.make("events")
  .add(
    HttpApiEndpoint.get("list", "/v1/users/:user_id/events")
      .setPath(UserPath)
      .setUrlParams(EventsQuery)
      .addSuccess(Answers.Events)
      .addError(BadRequest)
      .addError(DatabaseUnavailable)
      .annotateContext(OpenApi.annotations({
        summary: "List a user's events",
        description: "A user's connection events, newest first; page with next_before"
      }))
  )
  .middleware(Authentication)
  .annotate(OpenApi.Description, "The record of what happened to each user's connections")
{}

/** The connect session the page's calls carry (X-Connect-Session), live and for one user. */
export class ConnectSession extends Context.Tag("Integrations/ConnectSession")<ConnectSession, StoredSession>() {}

/** `X-Connect-Session: <secret>`: the session-scoped API of the connect page accepts nothing else. */
export class SessionAuthentication extends HttpApiMiddleware.Tag<SessionAuthentication>()("Integrations/SessionAuthentication", {
  failure: Schema.Union(SessionInvalid, DatabaseUnavailable),
  provides: ConnectSession,
  security: { session: HttpApiSecurity.apiKey({ key: "X-Connect-Session", in: "header" }) }
}) {}

export class ConnectSessionsGroup extends HttpApiGroup.make("connectSessions")
  .add(
    HttpApiEndpoint.post("create", "/v1/connect/sessions")
      .setPayload(CreateSessionRequest)
      .addSuccess(Answers.ConnectSessionCreated, { status: 201 })
      .pipe(withBodyErrors)
      .addError(UnknownPlatform)
      .addError(PlatformNotConfigured)
      .addError(InvalidReturnTo)
      .addError(DatabaseUnavailable)
      .annotateContext(OpenApi.annotations({
        summary: "Create a connect session",
        description:
          "A connect session for one user, valid CONNECT_SESSION_TTL (30 minutes), limited to the listed platforms (default: every configured one): the connect page's URL, its secret in the fragment"
      }))
  )
  .middleware(Authentication)
  .annotate(OpenApi.Description, "Sessions of the connect page, made by the application's back end for the user logged in")
{}

export class ConnectSessionGroup extends HttpApiGroup.make("connectSession")
  .add(
    HttpApiEndpoint.get("view", "/v1/connect/session")
      .addSuccess(Answers.ConnectSessionView)
      .annotateContext(OpenApi.annotations({
        summary: "View the session",
        description: "The session's platforms, each with its status"
      }))
  )
  .add(
    HttpApiEndpoint.post("authorize", "/v1/connect/session/platforms/:platform/authorize")
      .setPath(PlatformPath)
      .setPayload(SessionAuthorizeRequest)
      .addSuccess(Answers.AuthUrl)
      .pipe(withBodyErrors, withPlatformErrors)
      .addError(NotInSession)
      .addError(UnknownPlatform)
      .addError(PlatformNotConfigured)
      .addError(InvalidReturnTo)
      .annotateContext(OpenApi.annotations({
        summary: "Connect one of the session's platforms",
        description:
          "Starts a connection of one of the session's platforms: in a popup (the default), or in redirect mode coming back to the connect page (CONNECT_PAGE_URL)"
      }))
  )
  .add(
    HttpApiEndpoint.del("disconnect", "/v1/connect/session/platforms/:platform")
      .setPath(PlatformPath)
      .addSuccess(Answers.Disconnected)
      .pipe(withBodyErrors)
      .addError(NotInSession)
      .addError(UnknownPlatform)
      .addError(NotConnected)
      .annotateContext(OpenApi.annotations({
        summary: "Disconnect one of the session's platforms",
        description: "Disconnects one of the session's platforms, when the session allows it"
      }))
  )
  // SessionAuthentication reads the session from the database: every call may answer DatabaseUnavailable.
  .middleware(SessionAuthentication)
  .annotate(OpenApi.Description, "What the connect page calls, with its session (X-Connect-Session) and nothing else")
{}

export class WebhooksGroup extends HttpApiGroup.make("webhooks")
  .add(
    HttpApiEndpoint.get("deliveries", "/v1/webhooks/deliveries")
      .setUrlParams(DeliveriesQuery)
      .addSuccess(Answers.WebhookDeliveries)
      .addError(BadRequest)
      .addError(DatabaseUnavailable)
      .annotateContext(OpenApi.annotations({
        summary: "List webhook deliveries",
        description: "Webhook deliveries, newest first, of one status (pending, delivered, failed) or all; page with next_before"
      }))
  )
  .add(
    HttpApiEndpoint.post("retry", "/v1/webhooks/deliveries/:id/retry")
      .setPath(DeliveryPath)
      .addSuccess(Answers.WebhookDelivery, { status: 202 })
      .pipe(withBodyErrors)
      .addError(DeliveryNotFound)
      .addError(EndpointNotConfigured)
      .addError(DatabaseUnavailable)
      .annotateContext(OpenApi.annotations({
        summary: "Send a delivery again",
        description:
          "Makes a delivery due now: a failed or delivered one is sent again on a fresh schedule, with the same webhook-id"
      }))
  )
  .middleware(Authentication)
  .annotate(OpenApi.Description, "The outbox of signed webhooks: what was sent where, and sending again")
{}

export class HealthGroup extends HttpApiGroup.make("health")
  .add(
    HttpApiEndpoint.get("health", "/health")
      .addSuccess(Answers.Health)
      .addError(DatabaseUnavailable)
      .annotateContext(OpenApi.annotations({
        summary: "Service health",
        description: "200 when the database answers, 503 otherwise (within 2 s)"
      }))
  )
  .add(
    HttpApiEndpoint.get("providers", "/health/providers")
      .addSuccess(Answers.ProvidersHealth)
      .annotateContext(OpenApi.annotations({
        summary: "Platform health",
        description: "Each platform's breaker state and health"
      }))
  )
  .annotate(OpenApi.Description, "Whether the service, its database and the platforms answer; no API key")
{}

const DECODE_ERROR = "#/components/schemas/HttpApiDecodeError"

const isDecodeError = (schema: JsonSchema.JsonSchema): boolean => "$ref" in schema && schema.$ref === DECODE_ERROR

/** The members of a union (AnyObject and Empty are anyOf too, but one schema each). */
const membersOf = (schema: JsonSchema.JsonSchema): ReadonlyArray<JsonSchema.JsonSchema> =>
  "anyOf" in schema && !("$id" in schema) ? schema.anyOf : [schema]

/** The _tag of an error's answers: its component's name, or the inline schema's _tag. */
const tagOf = (schema: JsonSchema.JsonSchema): string | undefined => {
  if ("$ref" in schema) return schema.$ref.split("/").pop()
  const tag = "properties" in schema ? schema.properties["_tag"] : undefined
  return tag !== undefined && "enum" in tag ? String(tag.enum[0]) : undefined
}

/**
 * Each error answer of an operation described by the errors it may carry (the framework names
 * only the first). HttpApi also declares its HttpApiDecodeError as a 400 of every operation, but
 * errorResponses answers a decode failure as BadRequest, which the operations that can be
 * refused declare: that schema, never sent, is dropped, and so is the 400 of the others.
 */
const documentErrors = (responses: OpenApi.OpenAPISpecResponses): OpenApi.OpenAPISpecResponses =>
  Object.fromEntries(Object.entries(responses).flatMap(([status, response]) => {
    const schema = response.content?.["application/json"]?.schema
    if (Number(status) < 400 || schema === undefined) return [[status, response]]
    const members = membersOf(schema).filter((member) => !isDecodeError(member))
    const [first] = members
    if (first === undefined) return []
    const tags = members.map(tagOf)
    return [[status, {
      description: tags.every((tag) => tag !== undefined) ? tags.join(" or ") : response.description,
      content: { "application/json": { schema: members.length === 1 ? first : { anyOf: members } } }
    }]]
  }))

/** Every operation's error answers documented as documentErrors says (OpenApi.Transform hands the document untyped). */
const withDocumentedErrors = (spec: Record<string, any>): Record<string, any> => {
  const paths: OpenApi.OpenAPISpecPaths = spec["paths"]
  return {
    ...spec,
    paths: Object.fromEntries(Object.entries(paths).map(([path, item]) => [
      path,
      Object.fromEntries(Object.entries(item).map(([method, op]) => [method, { ...op, responses: documentErrors(op.responses) }]))
    ]))
  }
}

export class Api extends HttpApi.make("oauth-integrations")
  .add(PlatformsGroup)
  .add(ConnectionsGroup)
  .add(CallbackGroup)
  .add(OnboardingGroup)
  .add(EventsGroup)
  .add(ConnectSessionsGroup)
  .add(ConnectSessionGroup)
  .add(WebhooksGroup)
  .add(HealthGroup)
  .annotate(OpenApi.Title, "OAuth integrations")
  .annotate(OpenApi.Version, packageVersion)
  .annotate(OpenApi.Description, "Connects users to platforms over OAuth and keeps the connections alive")
  .annotate(OpenApi.Transform, (spec) => addWebhooksToSpec(withDocumentedErrors(spec)))
{}
