import { Schema } from "effect"
import * as Answers from "./answers.js"

/** Identifiers arrive in paths: printable, no slashes or spaces, at most 200 characters. */
export const USER_ID = "[A-Za-z0-9._:@|+-]{1,200}"
export const PLATFORM_KEY = "[a-z0-9_-]{1,40}"

export const UserId = Schema.String.pipe(
  Schema.pattern(new RegExp(`^${USER_ID}$`), {
    message: () => "user_id must be 1-200 characters of letters, digits and . _ : @ | + -"
  })
)
export const PlatformKey = Schema.String.pipe(
  Schema.pattern(new RegExp(`^${PLATFORM_KEY}$`), { message: () => "platform must be a lower-case platform key such as gsc" })
)

export const UserPath = Schema.Struct({ user_id: UserId })
export const UserPlatformPath = Schema.Struct({ user_id: UserId, platform: PlatformKey })
export const PlatformPath = Schema.Struct({ platform: PlatformKey })

export const ConfirmRequest = Schema.Struct({
  confirmation: Schema.String.pipe(
    Schema.pattern(/^[A-Za-z0-9_-]{1,200}$/, { message: () => "confirmation must be the code the callback gave (letters, digits, - and _)" })
  ).annotations({ description: "The one-time code the callback gave the browser (status=pending)" })
})

export const AuthorizeRequest = Schema.Struct({
  return_to: Schema.optional(Schema.String.pipe(Schema.maxLength(2048))),
  mode: Schema.optional(Schema.Literal("redirect", "popup"))
})

/**
 * Lenient on purpose: whatever the platform (or someone else) sends, the browser is answered
 * with a redirect or the popup page; a repeated or over-long value makes it invalid_request.
 * Other parameters (scope, iss, error_description...) are ignored.
 */
const CallbackParam = Schema.Union(Schema.String, Schema.Array(Schema.String))

export const CallbackQuery = Schema.Struct({
  state: Schema.optional(CallbackParam),
  code: Schema.optional(CallbackParam),
  error: Schema.optional(CallbackParam),
  iss: Schema.optional(CallbackParam)
})

const Token = (name: string) =>
  Schema.String.pipe(
    Schema.minLength(1, { message: () => `${name} must not be empty` }),
    Schema.maxLength(8192, { message: () => `${name} must be at most 8192 characters` })
  )

/** An ISO 8601 instant with its offset (Z or ±hh:mm), such as 2026-12-01T10:00:00Z. */
const Instant = (name: string) =>
  Schema.compose(
    Schema.String.pipe(
      Schema.pattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/, {
        message: () => `${name} must be an ISO 8601 instant with its offset, such as 2026-12-01T10:00:00Z`
      })
    ),
    Schema.Date
  )

export const ImportRequest = Schema.Struct({
  access_token: Schema.optional(Token("access_token")),
  refresh_token: Schema.optional(Token("refresh_token")),
  token_type: Schema.optional(Schema.NullOr(Schema.String.pipe(Schema.maxLength(40, { message: () => "token_type must be at most 40 characters" })))),
  expires_at: Schema.optional(Schema.NullOr(Instant("expires_at"))).annotations({
    description: "When the access token expires; absent or null when unknown"
  }),
  scope: Schema.optional(Schema.NullOr(Schema.String.pipe(Schema.maxLength(4096, { message: () => "scope must be at most 4096 characters" })))),
  account_id: Schema.optional(Schema.String.pipe(
    Schema.pattern(/^[^\u0000-\u001f]{0,200}$/, { message: () => "account_id must be at most 200 printable characters" })
  )),
  provider_data: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  updated_at: Schema.optional(Instant("updated_at")).annotations({
    description: "When the source last changed these tokens; an import replaces a stored connection only when it is newer. Default: now"
  })
})

export const EventsQuery = Schema.Struct({
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 200))),
  before: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.positive()))
})

export const CreateSessionRequest = Schema.Struct({
  user_id: UserId,
  platforms: Schema.optional(Schema.Array(PlatformKey).pipe(
    Schema.minItems(1, { message: () => "platforms must name at least one platform (or be left out for all)" }),
    Schema.maxItems(50, { message: () => "platforms may name at most 50 platforms" })
  )),
  return_to: Schema.optional(Schema.String.pipe(Schema.maxLength(2048, { message: () => "return_to must be at most 2048 characters" }))),
  allow_disconnect: Schema.optional(Schema.Boolean)
})

/** The connect page's authorisation: in a popup, or (when the popup is blocked) by leaving the page and coming back to it. */
export const SessionAuthorizeRequest = Schema.Struct({
  mode: Schema.optional(Schema.Literal("redirect", "popup"))
})

export const DeliveriesQuery = Schema.Struct({
  status: Schema.optional(Schema.Literal("pending", "delivered", "failed")),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 500))),
  before: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.positive()))
})

export const DeliveryPath = Schema.Struct({ id: Schema.NumberFromString.pipe(Schema.int(), Schema.positive()) })

/*
 * The JSON of each answer as a client reads it: the Encoded side of the contract's schemas
 * (./answers.ts), for clients, and tests, that decode answers.
 */
export const BreakerHealthJson = Schema.encodedSchema(Answers.BreakerHealth)
export const PlatformJson = Schema.encodedSchema(Answers.Platform)
export const PlatformsResponse = Schema.encodedSchema(Answers.Platforms)
export const AccountJson = Schema.encodedSchema(Answers.Account)
export const ConnectionStatusJson = Schema.encodedSchema(Answers.ConnectionStatus)
export const ConnectionsResponse = Schema.encodedSchema(Answers.Connections)
export const AuthUrlPayloadJson = Schema.encodedSchema(Answers.AuthUrl)
export const TokenResponseJson = Schema.encodedSchema(Answers.AccessToken)
export const DisconnectResponse = Schema.encodedSchema(Answers.Disconnected)
export const ImportedResponse = Schema.encodedSchema(Answers.Imported)
export const StepFiveResponse = Schema.encodedSchema(Answers.StepFive)
export const EventJson = Schema.encodedSchema(Answers.Event)
export const EventsResponse = Schema.encodedSchema(Answers.Events)
export const HealthResponse = Schema.encodedSchema(Answers.Health)
export const ProvidersHealthResponse = Schema.encodedSchema(Answers.ProvidersHealth)
export const WebhookDeliveryJson = Schema.encodedSchema(Answers.WebhookDelivery)
export const WebhookDeliveriesResponse = Schema.encodedSchema(Answers.WebhookDeliveries)
export const DisconnectedResponse = Schema.encodedSchema(Answers.Disconnected)
export const ConnectSessionResponse = Schema.encodedSchema(Answers.ConnectSessionCreated)
