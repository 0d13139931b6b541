import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from "node:crypto"
import { Either } from "effect"

/**
 * Fernet (https://github.com/fernet/spec), as the legacy framework sealed some tokens with
 * Python's `cryptography`: version 0x80, a 64-bit timestamp, a 128-bit IV, AES-128-CBC with
 * PKCS #7 padding, HMAC-SHA256 over all of it; the key is 32 bytes, base64url, the signing
 * half first. Only what reading the legacy tables needs, and encryption for the tests.
 */

const VERSION = 0x80
const HEADER = 1 + 8 + 16
const MAC = 32

export interface FernetKey {
  readonly signing: Buffer
  readonly encryption: Buffer
}

const fromBase64Url = (text: string) => Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64")

/** A key as `Fernet.generate_key()` writes it: 32 bytes in base64url (44 characters with its padding). */
export const parseFernetKey = (text: string): Either.Either<FernetKey, string> => {
  const trimmed = text.trim()
  if (!/^[A-Za-z0-9_-]{43}=?$/.test(trimmed)) return Either.left("a Fernet key is 32 bytes in base64url (44 characters)")
  const bytes = fromBase64Url(trimmed)
  if (bytes.length !== 32) return Either.left("a Fernet key is 32 bytes in base64url (44 characters)")
  return Either.right({ signing: bytes.subarray(0, 16), encryption: bytes.subarray(16) })
}

/**
 * Whether a stored value is meant as a Fernet token rather than a token in plain text: it
 * starts with the version byte and a timestamp after 1970 ("gAAAAA"), is base64url, and is at
 * least as long as the shortest token. A plaintext OAuth token looks nothing like that.
 */
export const looksLikeFernet = (value: string) => value.length >= 100 && /^gAAAAA[A-Za-z0-9_-]+={0,2}$/.test(value)

/** The plaintext of `token` under one of `keys` (tried in order), or why not. */
export const fernetDecrypt = (token: string, keys: ReadonlyArray<FernetKey>): Either.Either<string, string> => {
  const bytes = fromBase64Url(token)
  if (bytes.length < HEADER + 16 + MAC || (bytes.length - HEADER - MAC) % 16 !== 0) return Either.left("not a well-formed Fernet token")
  if (bytes[0] !== VERSION) return Either.left("not a Fernet token of version 0x80")
  const signed = bytes.subarray(0, bytes.length - MAC)
  const mac = bytes.subarray(bytes.length - MAC)
  const key = keys.find((k) => timingSafeEqual(createHmac("sha256", k.signing).update(signed).digest(), mac))
  if (key === undefined) return Either.left(keys.length === 0 ? "no Fernet key is configured" : "no configured Fernet key verifies it")
  try {
    const decipher = createDecipheriv("aes-128-cbc", key.encryption, bytes.subarray(9, HEADER))
    return Either.right(Buffer.concat([decipher.update(signed.subarray(HEADER)), decipher.final()]).toString("utf8"))
  } catch {
    return Either.left("its padding is invalid")
  }
}

/** A Fernet token of `plaintext` made at `timestamp` (seconds) with `iv`: what the legacy code wrote. */
export const fernetEncrypt = (key: FernetKey, plaintext: string, timestamp: number, iv: Uint8Array): string => {
  const header = Buffer.alloc(9)
  header[0] = VERSION
  header.writeBigUInt64BE(BigInt(timestamp), 1)
  const cipher = createCipheriv("aes-128-cbc", key.encryption, iv)
  const signed = Buffer.concat([header, iv, cipher.update(plaintext, "utf8"), cipher.final()])
  const mac = createHmac("sha256", key.signing).update(signed).digest()
  return Buffer.concat([signed, mac]).toString("base64").replace(/\+/g, "-").replace(/\//g, "_")
}
