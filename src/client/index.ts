/**
 * `oauth-integrations/client`: the service's API for back ends. `makeClient` is the Effect
 * client derived from the contract; `createClient` a promise-based one over fetch.
 */
export { Api } from "../http/Api.js"
export { makeClient } from "./effect.js"
export { type Client, type ClientOptions, createClient, OAuthIntegrationsError } from "./fetch.js"
