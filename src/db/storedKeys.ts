import { Effect, Layer } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { ConfigInvalid } from "../config/ConfigInvalid.js"
import { isDevelopment } from "../config/DeployEnv.js"
import { DatabaseUnavailable } from "../domain/errors.js"
import { connectionsByKeyId } from "./ConnectionRepository.js"

/** The start's line for a key id that seals stored connections but is not configured. */
export const missingKeyProblem = (keyId: string, connections: number) =>
  `TOKEN_ENCRYPTION_KEYS: key "${keyId}" seals ${connections} stored connection(s) and is not configured`

const HINT = "restore the key, or list it after the current key in TOKEN_ENCRYPTION_KEYS (kid:base64,...); " +
  "until then those connections report \"unreadable\" and the monitor leaves them alone"

/**
 * Every key id that seals stored connections must be configured. A lost key (a development
 * secrets file deleted, a key dropped from the list too early, a container re-created) would
 * otherwise go unnoticed until a token is asked for. Outside development the start stops,
 * one line per key id; in development it warns and goes on. A database that cannot answer is
 * reported as unavailable, never as a key problem.
 */
export const checkStoredKeys = Effect.gen(function*() {
  const settings = yield* AppConfig
  const configured = new Set(settings.encryptionKeys.map((k) => k.id))
  const inUse = yield* connectionsByKeyId.pipe(
    Effect.mapError(() =>
      new DatabaseUnavailable({ message: "cannot check the key ids of the stored connections against TOKEN_ENCRYPTION_KEYS: the database is unavailable" })
    )
  )
  const problems = inUse.filter((k) => !configured.has(k.keyId)).map((k) => missingKeyProblem(k.keyId, k.connections))
  if (problems.length === 0) return
  if (!isDevelopment(settings.deployEnv)) return yield* new ConfigInvalid({ problems })
  yield* Effect.forEach(problems, (problem) => Effect.logWarning(problem).pipe(Effect.annotateLogs("hint", HINT)), { discard: true })
})

/**
 * The start check, to build after the migrations (it reads oauth_connections) and before
 * the API and the monitor: fails with ConfigInvalid (staging, production) or
 * DatabaseUnavailable. Needs AppConfig and the SqlClient.
 */
export const StoredKeysCheckLive = Layer.effectDiscard(checkStoredKeys)
