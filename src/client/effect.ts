import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Redacted } from "effect"
import { Api } from "../http/Api.js"

/**
 * The service's API as an Effect client derived from the contract itself: every endpoint by
 * group and name (`client.connections.status({ path: { user_id, platform } })`), its answer
 * decoded and its errors typed. Needs an HttpClient (FetchHttpClient.layer, or NodeHttpClient).
 */
export const makeClient = (options: { readonly baseUrl: string; readonly apiKey: string | Redacted.Redacted }) =>
  HttpApiClient.make(Api, {
    baseUrl: options.baseUrl,
    transformClient: HttpClient.mapRequest(
      HttpClientRequest.bearerToken(typeof options.apiKey === "string" ? options.apiKey : Redacted.value(options.apiKey))
    )
  })
