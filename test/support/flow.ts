import { Effect } from "effect"
import type { Instance } from "./app.js"

export const json = (response: Response): Effect.Effect<any> => Effect.promise(() => response.json())

export const call = (instance: Instance, path: string, init?: Parameters<Instance["request"]>[1]) =>
  Effect.promise(() => instance.request(path, init))

export const post = (instance: Instance, path: string, body: unknown = {}, key?: string | null) =>
  call(instance, path, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" }, ...(key === undefined ? {} : { key }) })

/**
 * The browser's part of a connection: POST authorize, follow auth_url to the fake
 * platform (which consents at once), and bring its redirect back to the service's callback.
 */
export const connect = (instance: Instance, userId: string, platform: string, body: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const authorize = yield* post(instance, `/v1/users/${userId}/connections/${platform}/authorize`, body)
    const payload = yield* json(authorize)
    if (authorize.status !== 200) return yield* Effect.dieMessage(`authorize answered ${authorize.status}: ${JSON.stringify(payload)}`)
    const consent = yield* Effect.promise(() => fetch(String(payload.auth_url), { redirect: "manual" }))
    const location = consent.headers.get("location")
    if (consent.status !== 302 || location === null) {
      return yield* Effect.dieMessage(`the platform answered ${consent.status}: ${yield* Effect.promise(() => consent.text())}`)
    }
    const back = new URL(location)
    const callback = yield* call(instance, `/oauth/${platform}/callback${back.search}`, { key: null })
    return { payload, redirect: back, callback }
  })
