import { Effect, Option, Redacted } from "effect"
import { AppConfig } from "./AppConfig.js"

const ENCRYPTED_SSL_MODES = new Set(["require", "verify-ca", "verify-full"])

/** localhost, 127.0.0.0/8 or ::1: a connection that never leaves the machine. */
const isLoopback = (host: string) =>
  host === "localhost" || host === "[::1]" || host === "::1" || /^127(?:\.\d{1,3}){3}$/.test(host)

const decoded = (text: string) => {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/**
 * Why a connection on `raw` (a DATABASE_URL already checked by the configuration) may travel in
 * clear over a network — its host is neither local nor a Unix socket, and its sslmode asks for
 * no encryption — or undefined. Never the URL itself: it holds a password.
 */
export const unencryptedDatabaseUrl = (raw: string): string | undefined => {
  const url = new URL(raw)
  // node-postgres, like libpq, takes a host parameter over the URL's host; a path is a socket.
  const host = url.searchParams.get("host") ?? decoded(url.hostname)
  if (host === "" || host.startsWith("/") || isLoopback(host.toLowerCase())) return undefined
  const mode = url.searchParams.get("sslmode")
  if (mode !== null && ENCRYPTED_SSL_MODES.has(mode.toLowerCase())) return undefined
  return `DATABASE_URL: host ${host} is not local and sslmode is ${mode === null ? "unset" : mode}, not require, verify-ca or verify-full: ` +
    "its password and every stored token may cross the network unencrypted"
}

/**
 * A warning at start, in production, when the database connection may not be encrypted: not a
 * refusal, since a private network or a TLS tunnel may protect it where this cannot see.
 */
export const warnUnencryptedDatabase = Effect.gen(function*() {
  const settings = yield* AppConfig
  if (settings.deployEnv !== "production" || Option.isNone(settings.database.url)) return
  const problem = unencryptedDatabaseUrl(Redacted.value(settings.database.url.value))
  if (problem !== undefined) yield* Effect.logWarning(problem)
})
