import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto"
import { Array as Arr, Effect, Either, Option, Redacted } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import type { EncryptionKey } from "../config/secrets.js"
import { TokenDecryptionFailed } from "../domain/errors.js"

/** A ciphertext and the id of the key that sealed it (stored in the row's key_id). */
export interface Sealed {
  readonly keyId: string
  readonly bytes: Uint8Array
}

const VERSION = 1
const IV_BYTES = 12
const TAG_BYTES = 16
const HEADER_BYTES = 1 + IV_BYTES + TAG_BYTES

/**
 * The associated data binds a ciphertext to what it belongs to and to its key id, so a
 * ciphertext copied to another row, another field or relabelled with another key fails.
 */
const associatedData = (keyId: string, context: ReadonlyArray<string>) =>
  Buffer.from(["oauth-integrations/v1", keyId, ...context].join("\u0000"), "utf8")

/** The context of a connection's tokens: (user, platform, account) and the field. */
/** A pending grant's tokens are bound to its row: a ciphertext moved elsewhere does not open. */
export const pendingContext = (
  id: string,
  identity: { readonly userId: string; readonly platform: string; readonly accountId: string },
  field: "access_token" | "refresh_token"
): ReadonlyArray<string> => ["pending", id, identity.userId, identity.platform, identity.accountId, field]

/** An authorisation request's PKCE verifier is bound to its state and its (user, platform). */
export const stateContext = (hash: Uint8Array, userId: string, platform: string): ReadonlyArray<string> =>
  ["state", Buffer.from(hash).toString("hex"), userId, platform]

export const connectionContext = (
  identity: { readonly userId: string; readonly platform: string; readonly accountId: string },
  field: "access_token" | "refresh_token"
): ReadonlyArray<string> => ["connection", identity.userId, identity.platform, identity.accountId, field]

/**
 * IVs are cut from a buffer of random bytes filled 4 KiB at a time: the same CSPRNG as one
 * randomBytes(12) per seal, at a fraction of its cost (sealing is on the monitor's path).
 */
const IV_POOL_BYTES = 4096
let ivPool = Buffer.alloc(0)
let ivOffset = 0
const nextIv = () => {
  if (ivOffset + IV_BYTES > ivPool.length) {
    ivPool = randomBytes(IV_POOL_BYTES)
    ivOffset = 0
  }
  const iv = ivPool.subarray(ivOffset, ivOffset + IV_BYTES)
  ivOffset += IV_BYTES
  return iv
}

export const makeCipher = (keys: Arr.NonEmptyReadonlyArray<EncryptionKey>) => {
  const current = Arr.headNonEmpty(keys)
  const byId = new Map(keys.map((k) => [k.id, k] as const))

  const seal = (plaintext: Redacted.Redacted<string>, context: ReadonlyArray<string>): Sealed => {
    const iv = nextIv()
    const cipher = createCipheriv("aes-256-gcm", Redacted.value(current.key), iv)
    cipher.setAAD(associatedData(current.id, context))
    const body = cipher.update(Redacted.value(plaintext), "utf8")
    const rest = cipher.final()
    const bytes = Buffer.allocUnsafe(HEADER_BYTES + body.length + rest.length)
    bytes[0] = VERSION
    iv.copy(bytes, 1)
    cipher.getAuthTag().copy(bytes, 1 + IV_BYTES)
    body.copy(bytes, HEADER_BYTES)
    rest.copy(bytes, HEADER_BYTES + body.length)
    return { keyId: current.id, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) }
  }

  const open = (sealed: Sealed, context: ReadonlyArray<string>): Either.Either<Redacted.Redacted<string>, TokenDecryptionFailed> => {
    const key = byId.get(sealed.keyId)
    if (key === undefined) return Either.left(new TokenDecryptionFailed({ keyId: sealed.keyId, reason: "unknown-key" }))
    const bytes = Buffer.from(sealed.bytes.buffer, sealed.bytes.byteOffset, sealed.bytes.byteLength)
    if (bytes.length < HEADER_BYTES || bytes[0] !== VERSION) {
      return Either.left(new TokenDecryptionFailed({ keyId: sealed.keyId, reason: "malformed" }))
    }
    try {
      const decipher = createDecipheriv("aes-256-gcm", Redacted.value(key.key), bytes.subarray(1, 1 + IV_BYTES))
      decipher.setAAD(associatedData(sealed.keyId, context))
      decipher.setAuthTag(bytes.subarray(1 + IV_BYTES, HEADER_BYTES))
      const body = decipher.update(bytes.subarray(HEADER_BYTES))
      const rest = decipher.final()
      return Either.right(Redacted.make(rest.length === 0 ? body.toString("utf8") : Buffer.concat([body, rest]).toString("utf8")))
    } catch {
      return Either.left(new TokenDecryptionFailed({ keyId: sealed.keyId, reason: "authentication-failed" }))
    }
  }

  return {
    /** The key new ciphertexts are sealed with (the first configured one). */
    currentKeyId: current.id,
    /** The ids of the configured keys, current first. */
    keyIds: keys.map((k) => k.id),
    /** Whether a key id is among the configured keys (rows under others cannot be read). */
    knows: (keyId: string) => byId.has(keyId),
    /** Encrypts with the current key; sealing cannot fail once the key is valid. */
    seal: (plaintext: Redacted.Redacted<string>, context: ReadonlyArray<string>): Effect.Effect<Sealed> =>
      Effect.sync(() => seal(plaintext, context)),
    /** seal, run at once: for code that seals many tokens inside one effect. */
    unsafeSeal: seal,
    sealOption: (plaintext: Option.Option<Redacted.Redacted<string>>, context: ReadonlyArray<string>) =>
      Effect.sync(() => Option.map(plaintext, (p) => seal(p, context))),
    open: (sealed: Sealed, context: ReadonlyArray<string>): Effect.Effect<Redacted.Redacted<string>, TokenDecryptionFailed> =>
      Effect.suspend(() => open(sealed, context)),
    /** open, run at once. */
    unsafeOpen: open
  } as const
}

/** AES-256-GCM over the configured keys: the first encrypts, all decrypt (rotation). */
export class TokenCipher extends Effect.Service<TokenCipher>()("Integrations/TokenCipher", {
  effect: Effect.map(AppConfig, (config) => makeCipher(config.encryptionKeys))
}) {}
