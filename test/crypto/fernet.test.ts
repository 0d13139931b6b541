import { describe, expect, it } from "@effect/vitest"
import { createHmac } from "node:crypto"
import { Either } from "effect"
import { fernetDecrypt, fernetEncrypt, type FernetKey, looksLikeFernet, parseFernetKey } from "../../src/crypto/fernet.js"

// The specification's published vectors (github.com/fernet/spec, generate.json and verify.json).
const SECRET = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
const TOKEN = "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA=="
const NOW = 499162800 // 1985-10-26T01:20:00-07:00
const IV = Uint8Array.from({ length: 16 }, (_, i) => i)

const key = (text: string): FernetKey => Either.getOrThrow(parseFernetKey(text))
const otherKey = key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")

const bytesOf = (token: string) => Buffer.from(token, "base64url")
const tokenOf = (bytes: Buffer) => bytes.toString("base64url")
/** A token with its MAC made again over `signed`: what a valid signer of bad content would send. */
const resigned = (signed: Buffer, k: FernetKey) => tokenOf(Buffer.concat([signed, createHmac("sha256", k.signing).update(signed).digest()]))

describe("Fernet", () => {
  it("makes the specification's token from its key, timestamp, IV and plaintext (generate.json)", () => {
    expect(fernetEncrypt(key(SECRET), "hello", NOW, IV)).toBe(TOKEN)
  })

  it("opens the specification's token (verify.json)", () => {
    expect(fernetDecrypt(TOKEN, [key(SECRET)])).toEqual(Either.right("hello"))
  })

  it("tries each configured key: the one that verifies opens it", () => {
    expect(fernetDecrypt(TOKEN, [otherKey, key(SECRET)])).toEqual(Either.right("hello"))
  })

  it("refuses a token no key verifies, an altered MAC, an altered ciphertext, a truncated token", () => {
    expect(Either.isLeft(fernetDecrypt(TOKEN, [otherKey]))).toBe(true)
    const bytes = bytesOf(TOKEN)
    const badMac = Buffer.from(bytes)
    badMac[badMac.length - 1] = (badMac[badMac.length - 1] ?? 0) ^ 1
    expect(Either.isLeft(fernetDecrypt(tokenOf(badMac), [key(SECRET)]))).toBe(true)
    const badBody = Buffer.from(bytes)
    badBody[30] = (badBody[30] ?? 0) ^ 1
    expect(Either.isLeft(fernetDecrypt(tokenOf(badBody), [key(SECRET)]))).toBe(true)
    expect(Either.isLeft(fernetDecrypt(tokenOf(bytes.subarray(0, 60)), [key(SECRET)]))).toBe(true)
    expect(Either.isLeft(fernetDecrypt(TOKEN, []))).toBe(true)
  })

  it("refuses a well-signed token whose payload is not a whole number of blocks, or whose padding is wrong", () => {
    const k = key(SECRET)
    const signed = bytesOf(TOKEN).subarray(0, bytesOf(TOKEN).length - 32)
    expect(fernetDecrypt(resigned(Buffer.concat([signed, Buffer.from([1, 2, 3])]), k), [k])).toEqual(Either.left("not a well-formed Fernet token"))
    // Another IV changes the last block's padding once decrypted (the specification's "incorrect IV").
    const otherIv = Buffer.from(signed)
    otherIv[9 + 15] = (otherIv[9 + 15] ?? 0) ^ 0x42
    expect(fernetDecrypt(resigned(otherIv, k), [k])).toEqual(Either.left("its padding is invalid"))
    const version = Buffer.from(signed)
    version[0] = 0x81
    expect(Either.isLeft(fernetDecrypt(resigned(version, k), [k]))).toBe(true)
  })

  it("tells a Fernet token from a plaintext OAuth token", () => {
    expect(looksLikeFernet(TOKEN)).toBe(true)
    expect(looksLikeFernet(fernetEncrypt(otherKey, "a".repeat(300), NOW, IV))).toBe(true)
    expect(looksLikeFernet("ya29.a0AfH6SMBx-plain-google-access-token_0123456789")).toBe(false)
    expect(looksLikeFernet("EwBQA+pvBAAUKods63Ys1fGlwiccIFJ+9u7mwrMAAa".repeat(3))).toBe(false)
  })

  it("reads a key as Fernet.generate_key() writes it, and refuses anything else", () => {
    expect(Either.isRight(parseFernetKey(SECRET))).toBe(true)
    expect(Either.isRight(parseFernetKey(SECRET.slice(0, 43)))).toBe(true)
    expect(Either.isLeft(parseFernetKey("too-short"))).toBe(true)
    expect(Either.isLeft(parseFernetKey(`${SECRET}AAAA`))).toBe(true)
  })
})
