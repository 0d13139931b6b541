import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** The database could not be reached or refused a statement; retry later. */
export class DatabaseUnavailable extends Schema.TaggedError<DatabaseUnavailable>()(
  "DatabaseUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

/** A stored ciphertext could not be decrypted: unknown key id, malformed bytes, or tampering. */
export class TokenDecryptionFailed extends Schema.TaggedError<TokenDecryptionFailed>()(
  "TokenDecryptionFailed",
  {
    keyId: Schema.String,
    reason: Schema.Literal("unknown-key", "malformed", "authentication-failed")
  }
) {
  override get message() {
    return `cannot decrypt a token sealed with key "${this.keyId}": ${this.reason}`
  }
}

/** The stored tokens of a connection cannot be read (see TokenDecryptionFailed); it needs re-authorisation. */
export class ConnectionUnreadable extends Schema.TaggedError<ConnectionUnreadable>()(
  "ConnectionUnreadable",
  {
    platform: Schema.String,
    reason: Schema.String
  },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** The callback's state is missing, unknown, already used, or belongs to another platform. */
export class InvalidState extends Schema.TaggedError<InvalidState>()(
  "InvalidState",
  { reason: Schema.Literal("missing", "unknown", "replayed", "platform-mismatch") },
  HttpApiSchema.annotations({ status: 400 })
) {
  override get message() {
    return `invalid state: ${this.reason}`
  }
}

/** The authorisation took longer than the state's lifetime (10 minutes); start again. */
export class StateExpired extends Schema.TaggedError<StateExpired>()(
  "StateExpired",
  {},
  HttpApiSchema.annotations({ status: 400 })
) {
  override get message() {
    return "the authorisation request expired"
  }
}
