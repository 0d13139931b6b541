import { createHash, randomBytes } from "node:crypto"
import { Effect, Redacted } from "effect"

const base64url = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url")

/** 256 random bits: an unguessable state (RFC 6749 §10.12). Kept Redacted: it must not reach a log. */
export const generateState = Effect.sync(() => Redacted.make(base64url(randomBytes(32))))

/** States are stored only as their SHA-256, so a database reader cannot complete a flow. */
export const hashState = (state: string): Uint8Array => new Uint8Array(createHash("sha256").update(state, "utf8").digest())

/** A code verifier of 43 characters from 256 random bits (RFC 7636 §4.1). */
export const generateVerifier = Effect.sync(() => Redacted.make(base64url(randomBytes(32))))

/** The S256 code challenge of a verifier (RFC 7636 §4.2). */
export const challengeS256 = (verifier: Redacted.Redacted<string>): string =>
  base64url(createHash("sha256").update(Redacted.value(verifier), "ascii").digest())
