import { Effect } from "effect"
import { AppConfig } from "./AppConfig.js"
import { isDevelopment } from "./DeployEnv.js"

/**
 * OAUTH_CONFIRMATION=off outside development: a grant is stored for whoever started its flow,
 * so an authorisation URL forwarded to a victim connects the victim's account to the sender.
 */
export const warnConfirmationOff = Effect.gen(function*() {
  const { oauth, deployEnv } = yield* AppConfig
  if (oauth.confirmation !== "off" || isDevelopment(deployEnv)) return
  yield* Effect.logWarning(
    "OAUTH_CONFIRMATION=off: a callback stores its grant for the user its flow was started for, without checking who consented; " +
      "a forwarded authorisation URL connects the consenting user's account to the sender's user. Set OAUTH_CONFIRMATION=required and confirm each grant"
  )
})
