import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Redacted } from "effect"
import { connectionContext, makeCipher, type Sealed } from "../../src/crypto/TokenCipher.js"
import { randomKey } from "../support/config.js"

const identity = { userId: "user-1", platform: "gsc", accountId: "" }
const context = connectionContext(identity, "access_token")
const token = Redacted.make("ya29.a0AfH6SMB-secret-access-token")

const flip = (sealed: Sealed, index: number): Sealed => {
  const bytes = Uint8Array.from(sealed.bytes)
  bytes[index] = (bytes[index] ?? 0) ^ 0x01
  return { ...sealed, bytes }
}

const failureReason = (exit: Exit.Exit<unknown, { readonly reason: string }>) =>
  Exit.match(exit, { onFailure: (cause) => cause.toJSON(), onSuccess: () => "decrypted" })

describe("TokenCipher", () => {
  const keyA = randomKey("a")
  const keyB = randomKey("b")
  const cipher = makeCipher([keyA])

  it.effect("decrypts what it encrypted", () =>
    Effect.gen(function*() {
      const sealed = yield* cipher.seal(token, context)
      expect(sealed.keyId).toBe("a")
      const opened = yield* cipher.open(sealed, context)
      expect(Redacted.value(opened)).toBe(Redacted.value(token))
    }))

  it.effect("uses a fresh IV each time, so equal tokens give different ciphertexts", () =>
    Effect.gen(function*() {
      const one = yield* cipher.seal(token, context)
      const two = yield* cipher.seal(token, context)
      expect(Buffer.from(one.bytes).equals(Buffer.from(two.bytes))).toBe(false)
    }))

  const layout = { version: 0, iv: 1, tag: 13, ciphertext: 29 }
  for (const [part, index] of Object.entries(layout).filter(([part]) => part !== "version")) {
    it.effect(`refuses a ciphertext whose ${part} was altered`, () =>
      Effect.gen(function*() {
        const sealed = yield* cipher.seal(token, context)
        const error = yield* Effect.flip(cipher.open(flip(sealed, index), context))
        expect(error._tag).toBe("TokenDecryptionFailed")
        expect(error.reason).toBe("authentication-failed")
      }))
  }

  it.effect("refuses a ciphertext moved to another connection or field (AAD)", () =>
    Effect.gen(function*() {
      const sealed = yield* cipher.seal(token, context)
      const otherUser = yield* Effect.flip(cipher.open(sealed, connectionContext({ ...identity, userId: "user-2" }, "access_token")))
      const otherPlatform = yield* Effect.flip(cipher.open(sealed, connectionContext({ ...identity, platform: "bing" }, "access_token")))
      const otherAccount = yield* Effect.flip(cipher.open(sealed, connectionContext({ ...identity, accountId: "x" }, "access_token")))
      const otherField = yield* Effect.flip(cipher.open(sealed, connectionContext(identity, "refresh_token")))
      for (const error of [otherUser, otherPlatform, otherAccount, otherField]) expect(error.reason).toBe("authentication-failed")
    }))

  it.effect("refuses a ciphertext relabelled with another configured key id", () =>
    Effect.gen(function*() {
      const both = makeCipher([keyA, keyB])
      const sealed = yield* both.seal(token, context)
      const error = yield* Effect.flip(both.open({ ...sealed, keyId: "b" }, context))
      expect(error.reason).toBe("authentication-failed")
    }))

  it.effect("refuses an unknown key id and a truncated or wrongly versioned ciphertext", () =>
    Effect.gen(function*() {
      const sealed = yield* cipher.seal(token, context)
      expect((yield* Effect.flip(cipher.open({ ...sealed, keyId: "zzz" }, context))).reason).toBe("unknown-key")
      expect((yield* Effect.flip(cipher.open({ ...sealed, bytes: sealed.bytes.slice(0, 20) }, context))).reason).toBe("malformed")
      expect((yield* Effect.flip(cipher.open(flip(sealed, layout.version), context))).reason).toBe("malformed")
    }))

  it.effect("after rotation, rows sealed under the old key still open and new ones use the new key", () =>
    Effect.gen(function*() {
      const before = yield* makeCipher([keyA]).seal(token, context)
      const rotated = makeCipher([keyB, keyA])
      expect(Redacted.value(yield* rotated.open(before, context))).toBe(Redacted.value(token))
      const after = yield* rotated.seal(token, context)
      expect(after.keyId).toBe("b")
      const withoutB = yield* Effect.exit(makeCipher([keyA]).open(after, context))
      expect(failureReason(withoutB)).not.toBe("decrypted")
    }))

  it.effect("never shows key material or plaintext when printed", () =>
    Effect.gen(function*() {
      const sealed = yield* cipher.seal(token, context)
      const opened = yield* cipher.open(sealed, context)
      expect(String(opened)).not.toContain("secret-access-token")
      expect(JSON.stringify(keyA)).not.toContain(Buffer.from(Redacted.value(keyA.key)).toString("base64"))
    }))
})
