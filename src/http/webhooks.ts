import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Clock, Effect, Option } from "effect"
import { WebhookRepository } from "../db/WebhookRepository.js"
import { DeliveryNotFound, EndpointNotConfigured } from "../domain/errors.js"
import { Api } from "./Api.js"

export const WebhooksLive = HttpApiBuilder.group(Api, "webhooks", (handlers) =>
  Effect.gen(function*() {
    const deliveries = yield* WebhookRepository
    return handlers
      .handle("deliveries", ({ urlParams }) =>
        deliveries.list({ status: urlParams.status, limit: urlParams.limit ?? 50, before: urlParams.before }))
      .handle("retry", ({ path }) =>
        Effect.gen(function*() {
          const found = yield* deliveries.retry(path.id, new Date(yield* Clock.currentTimeMillis))
          if (Option.isNone(found)) return yield* new DeliveryNotFound({ id: path.id })
          const { configured, delivery } = found.value
          if (!configured) {
            return yield* new EndpointNotConfigured({
              endpoint: delivery.endpoint,
              message: `the endpoint ${delivery.endpoint} is not configured: configure it again to send this delivery`
            })
          }
          return delivery
        }))
  }))
