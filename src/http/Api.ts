import { readFileSync } from "node:fs"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
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


export class PlatformsGroup extends HttpApiGroup.make("platforms")
  .add(HttpApiEndpoint.get("list", "/v1/platforms").addSuccess(Answers.Platforms))
  .middleware(Authentication)
  .annotate(OpenApi.Description, "The platforms this service offers and whether each is configured")
{}

export class ConnectionsGroup extends HttpApiGroup.make("connections")
  .add(
    HttpApiEndpoint.get("list", "/v1/users/:user_id/connections")
      .setPath(UserPath)
      .addSuccess(Answers.Connections)
      .annotate(OpenApi.Description, "The status of every platform for a user (one database round trip, cached)")
  )
  .add(
    HttpApiEndpoint.get("status", "/v1/users/:user_id/connections/:platform")
      .setPath(UserPlatformPath)
      .addSuccess(Answers.ConnectionStatus)
      .addError(UnknownPlatform)
  )
  .add(
    HttpApiEndpoint.post("authorize", "/v1/users/:user_id/connections/:platform/authorize")
      .setPath(UserPlatformPath)
      .setPayload(AuthorizeRequest)
      .addSuccess(Answers.AuthUrl)
      .addError(UnknownPlatform)
      .addError(PlatformNotConfigured)
      .addError(InvalidReturnTo)
      .addError(InvalidGrant)
      .addError(PayloadTooLarge)
      .annotate(OpenApi.Description, "Starts a connection: the URL to send the user to")
  )
  .add(
    HttpApiEndpoint.post("confirm", "/v1/users/:user_id/connections/:platform/confirm")
      .setPath(UserPlatformPath)
      .setPayload(ConfirmRequest)
      .addSuccess(Answers.ConnectionStatus)
      .addError(UnknownPlatform)
      .addError(InvalidConfirmation)
      .addError(ConfirmationRefused)
      .addError(PayloadTooLarge)
      .annotate(
        OpenApi.Description,
        "Confirms a pending grant for the user logged in where the browser landed (user_id): connected when the flow was started for that user; otherwise 403, and the grant is revoked"
      )
  )
  .add(
    HttpApiEndpoint.post("refresh", "/v1/users/:user_id/connections/:platform/refresh")
      .setPath(UserPlatformPath)
      .addSuccess(Answers.ConnectionStatus)
      .addError(UnknownPlatform)
      .addError(PlatformNotConfigured)
      .addError(NotConnected)
      .addError(ReauthRequired)
      .addError(InvalidGrant)
      .addError(ConnectionUnreadable)
      .addError(RefreshInProgress)
      .addError(PayloadTooLarge)
      .annotate(OpenApi.Description, "Refreshes the access token now (validates it for platforms whose tokens do not expire)")
  )
  .add(
    HttpApiEndpoint.get("token", "/v1/users/:user_id/connections/:platform/token")
      .setPath(UserPlatformPath)
      .addSuccess(Answers.AccessToken)
      .addError(Forbidden)
      .addError(UnknownPlatform)
      .addError(PlatformNotConfigured)
      .addError(NotConnected)
      .addError(ReauthRequired)
      .addError(InvalidGrant)
      .addError(ConnectionUnreadable)
      .addError(RefreshInProgress)
      .annotate(OpenApi.Description, "A fresh access token, for trusted back ends (a key from TOKEN_API_KEYS)")
  )
  .add(
    HttpApiEndpoint.put("import", "/v1/users/:user_id/connections/:platform/import")
      .setPath(UserPlatformPath)
      .setPayload(ImportRequest)
      .addSuccess(Answers.Imported)
      .addError(Forbidden)
      .addError(UnknownPlatform)
      .addError(PayloadTooLarge)
      .annotate(
        OpenApi.Description,
        "Brings in a connection made elsewhere, stored sealed (a key from TOKEN_API_KEYS: it writes secrets). The same body twice changes nothing; a different one replaces the stored tokens only when it is newer (updated_at, or now)"
      )
  )
  .add(
    HttpApiEndpoint.del("disconnect", "/v1/users/:user_id/connections/:platform")
      .setPath(UserPlatformPath)
      .addSuccess(Answers.Disconnected)
      .addError(UnknownPlatform)
      .addError(NotConnected)
      .annotate(OpenApi.Description, "Revokes the grant at the platform where it can, and forgets the tokens")
  )
  .addError(DatabaseUnavailable)
  .addError(ProviderUnavailable)
  .addError(RateLimited)
  .addError(CircuitOpen)
  .addError(InvalidClient)
  .addError(ProviderResponseInvalid)
  .middleware(Authentication)
{}

export class CallbackGroup extends HttpApiGroup.make("oauth")
  .add(
    HttpApiEndpoint.get("callback", "/oauth/:platform/callback")
      .setPath(PlatformPath)
      .setUrlParams(CallbackQuery)
      .addSuccess(HttpApiSchema.Empty(302))
      .addSuccess(Schema.String.pipe(HttpApiSchema.withEncoding({ kind: "Text", contentType: "text/html" })))
      .addError(UnknownPlatform)
      .annotate(
        OpenApi.Description,
        "The platform sends the browser here. Redirect mode: 302 to return_to with platform, status and reason. Popup mode: a page that posts the result to FRONTEND_URL's origin and closes."
      )
  )
{}

export class OnboardingGroup extends HttpApiGroup.make("onboarding")
  .add(
    HttpApiEndpoint.get("stepFive", "/v1/users/:user_id/onboarding/step-5")
      .setPath(UserPath)
      .addSuccess(Answers.StepFive)
      .annotate(OpenApi.Description, "Whether at least one platform is connected")
  )
  .addError(DatabaseUnavailable)
  .middleware(Authentication)
{}

export class EventsGroup extends HttpApiGroup.make("events")
  .add(
    HttpApiEndpoint.get("list", "/v1/users/:user_id/events")
      .setPath(UserPath)
      .setUrlParams(EventsQuery)
      .addSuccess(Answers.Events)
      .annotate(OpenApi.Description, "A user's connection events, newest first; page with next_before")
  )
  .addError(DatabaseUnavailable)
  .middleware(Authentication)
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
      .addError(UnknownPlatform)
      .addError(PlatformNotConfigured)
      .addError(InvalidReturnTo)
      .addError(PayloadTooLarge)
      .annotate(
        OpenApi.Description,
        "A connect session for one user, valid CONNECT_SESSION_TTL (30 minutes), limited to the listed platforms (default: every configured one): the connect page's URL, its secret in the fragment"
      )
  )
  .addError(DatabaseUnavailable)
  .middleware(Authentication)
{}

export class ConnectSessionGroup extends HttpApiGroup.make("connectSession")
  .add(
    HttpApiEndpoint.get("view", "/v1/connect/session")
      .addSuccess(Answers.ConnectSessionView)
      .annotate(OpenApi.Description, "The session's platforms, each with its status")
  )
  .add(
    HttpApiEndpoint.post("authorize", "/v1/connect/session/platforms/:platform/authorize")
      .setPath(PlatformPath)
      .setPayload(SessionAuthorizeRequest)
      .addSuccess(Answers.AuthUrl)
      .addError(NotInSession)
      .addError(UnknownPlatform)
      .addError(PlatformNotConfigured)
      .addError(InvalidReturnTo)
      .addError(InvalidGrant)
      .addError(PayloadTooLarge)
      .annotate(
        OpenApi.Description,
        "Starts a connection of one of the session's platforms: in a popup (the default), or in redirect mode coming back to the connect page (CONNECT_PAGE_URL)"
      )
  )
  .add(
    HttpApiEndpoint.del("disconnect", "/v1/connect/session/platforms/:platform")
      .setPath(PlatformPath)
      .addSuccess(Answers.Disconnected)
      .addError(NotInSession)
      .addError(UnknownPlatform)
      .addError(NotConnected)
      .annotate(OpenApi.Description, "Disconnects one of the session's platforms, when the session allows it")
  )
  .addError(DatabaseUnavailable)
  .addError(ProviderUnavailable)
  .addError(RateLimited)
  .addError(CircuitOpen)
  .addError(InvalidClient)
  .addError(ProviderResponseInvalid)
  .middleware(SessionAuthentication)
  .annotate(OpenApi.Description, "What the connect page calls, with its session (X-Connect-Session) and nothing else")
{}

export class WebhooksGroup extends HttpApiGroup.make("webhooks")
  .add(
    HttpApiEndpoint.get("deliveries", "/v1/webhooks/deliveries")
      .setUrlParams(DeliveriesQuery)
      .addSuccess(Answers.WebhookDeliveries)
      .annotate(OpenApi.Description, "Webhook deliveries, newest first, of one status (pending, delivered, failed) or all; page with next_before")
  )
  .add(
    HttpApiEndpoint.post("retry", "/v1/webhooks/deliveries/:id/retry")
      .setPath(DeliveryPath)
      .addSuccess(Answers.WebhookDelivery, { status: 202 })
      .addError(DeliveryNotFound)
      .addError(EndpointNotConfigured)
      .addError(PayloadTooLarge)
      .annotate(
        OpenApi.Description,
        "Makes a delivery due now: a failed or delivered one is sent again on a fresh schedule, with the same webhook-id"
      )
  )
  .addError(DatabaseUnavailable)
  .middleware(Authentication)
  .annotate(OpenApi.Description, "The outbox of signed webhooks: what was sent where, and sending again")
{}

export class HealthGroup extends HttpApiGroup.make("health")
  .add(HttpApiEndpoint.get("health", "/health").addSuccess(Answers.Health).addError(DatabaseUnavailable))
  .add(HttpApiEndpoint.get("providers", "/health/providers").addSuccess(Answers.ProvidersHealth))
{}

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
  .annotate(OpenApi.Transform, addWebhooksToSpec)
  .addError(PayloadTooLarge)
  .addError(UnsupportedMediaType)
  .addError(BadRequest)
{}
