import { Config, ConfigError, Either, type Option, Redacted } from "effect"
import { secret } from "./rules.js"

export interface EncryptionKey {
  readonly id: string
  readonly key: Redacted.Redacted<Uint8Array>
}

const KEY_ID = /^[A-Za-z0-9_.-]{1,32}$/
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Parses `kid:base64key,kid2:base64key2`; messages never contain key material. */
export const parseEncryptionKeys = (raw: string): Either.Either<ReadonlyArray<EncryptionKey>, string> => {
  const entries = raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
  if (entries.length === 0) return Either.left("must list at least one key as kid:base64key")
  const keys: Array<EncryptionKey> = []
  for (const [index, entry] of entries.entries()) {
    const colon = entry.indexOf(":")
    const position = `entry ${index + 1}`
    if (colon <= 0) return Either.left(`${position} must be kid:base64key`)
    const id = entry.slice(0, colon)
    const material = entry.slice(colon + 1)
    if (!KEY_ID.test(id)) return Either.left(`${position}: key id must be 1-32 characters of A-Z a-z 0-9 _ . -`)
    if (!BASE64.test(material)) return Either.left(`key "${id}" is not valid base64`)
    const bytes = Buffer.from(material, "base64")
    if (bytes.length !== 32) return Either.left(`key "${id}" must decode to 32 bytes (AES-256), got ${bytes.length}`)
    if (keys.some((k) => k.id === id)) return Either.left(`key id "${id}" appears more than once`)
    keys.push({ id, key: Redacted.make(new Uint8Array(bytes)) })
  }
  return Either.right(keys)
}

export const encryptionKeysConfig = (name: string): Config.Config<Option.Option<ReadonlyArray<EncryptionKey>>> =>
  secret(name, (c) =>
    c.pipe(
      Config.mapOrFail((value) => Either.mapLeft(parseEncryptionKeys(Redacted.value(value)), (rule) => ConfigError.InvalidData([], rule))),
      Config.option
    ))

const MIN_API_KEY_LENGTH = 16

/** Comma separated API keys, each at least 16 characters; never echoed. */
export const apiKeysConfig = (name: string): Config.Config<ReadonlyArray<Redacted.Redacted>> =>
  secret(name, (c) => c.pipe(
    Config.mapOrFail((value) => {
      const keys = Redacted.value(value).split(",").map((s) => s.trim()).filter((s) => s.length > 0)
      const short = keys.findIndex((k) => k.length < MIN_API_KEY_LENGTH)
      return short >= 0
        ? Either.left(ConfigError.InvalidData([], `entry ${short + 1} is shorter than ${MIN_API_KEY_LENGTH} characters`))
        : Either.right(keys.map((k) => Redacted.make(k)))
    }),
    Config.withDefault<ReadonlyArray<Redacted.Redacted>>([])
  ))

/** The least an API key must carry outside development, by `estimatedEntropyBits`. */
export const MIN_API_KEY_BITS = 128

const CHARACTER_CLASSES: ReadonlyArray<readonly [RegExp, number]> = [
  [/[a-z]/, 26],
  [/[A-Z]/, 26],
  [/[0-9]/, 10],
  // Everything else counts as one of the 33 printable ASCII symbols (space included).
  [/[^a-zA-Z0-9]/, 33]
]

/**
 * A simple estimate, on the low side, of the bits of a key: its length times log2 of the
 * alphabet it draws from, the alphabet being the classes of characters it uses (26 lower case,
 * 26 upper case, 10 digits, 33 symbols) but never more than the distinct characters it holds.
 * So "aaaa…" counts 0 bits, "abab…" 1 bit a character, 24 random bytes in base64url (32
 * characters) about 150, and a key of the service's own making (dev_ and those 32) about 170.
 * It cannot tell a random key from a chosen one, so it asks for a margin: 16 random bytes in
 * hex (128 real bits) usually count about 120 and are refused; 32 random bytes always pass.
 */
export const estimatedEntropyBits = (key: string): number => {
  const characters = Array.from(key)
  const distinct = new Set(characters).size
  const classes = CHARACTER_CLASSES.reduce((size, [test, count]) => (test.test(key) ? size + count : size), 0)
  const alphabet = Math.min(classes, distinct)
  return alphabet <= 1 ? 0 : characters.length * Math.log2(alphabet)
}

/** One line per key of `name` below MIN_API_KEY_BITS, naming its entry (from 1), never the key. */
export const weakApiKeys = (name: string, keys: ReadonlyArray<Redacted.Redacted>): ReadonlyArray<string> =>
  keys.flatMap((key, index) => {
    const bits = Math.floor(estimatedEntropyBits(Redacted.value(key)))
    return bits >= MIN_API_KEY_BITS
      ? []
      : [`${name}: entry ${index + 1} is too guessable outside development: about ${bits} bits of entropy (length × log2 of the alphabet it uses), at least ${MIN_API_KEY_BITS} needed, e.g. 32 random bytes in base64url`]
  })
