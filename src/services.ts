import { Layer } from "effect"
import { ConnectionRepository } from "./db/ConnectionRepository.js"
import { EventRepository } from "./db/EventRepository.js"
import { PendingGrantRepository } from "./db/PendingGrantRepository.js"
import { StateRepository } from "./db/StateRepository.js"
import { WebhookRepository } from "./db/WebhookRepository.js"
import { TokenCipher } from "./crypto/TokenCipher.js"
import { Connect } from "./integrations/Connect.js"
import { ConnectSessions } from "./integrations/ConnectSessions.js"
import { ConnectSessionRepository } from "./db/ConnectSessionRepository.js"
import { Grants } from "./integrations/Grants.js"
import { Imports } from "./integrations/Imports.js"
import { Refresher } from "./integrations/Refresher.js"
import { Tokens } from "./integrations/Tokens.js"
import { TokenMonitor } from "./monitor/TokenMonitor.js"
import { PlatformCatalog, ProviderRegistry } from "./registry/ProviderRegistry.js"
import { StatusChangesLive } from "./status/StatusChanges.js"
import { Statuses } from "./status/Statuses.js"

/**
 * The flows and what the API, the monitor and the cleanup read beside them, for the platforms
 * of `catalog`, over configuration and storage. Each service wires its own dependencies; a
 * service reached by several of them (the registry, the repositories) is built once.
 */
export const makeServices = (catalog: Layer.Layer<PlatformCatalog>) =>
  Layer.mergeAll(
    Connect.Default,
    ConnectSessions.Default,
    ConnectSessionRepository.Default,
    Tokens.Default,
    Statuses.Default,
    TokenMonitor.Default,
    Grants.Default,
    Imports.Default,
    Refresher.Default,
    ProviderRegistry.Default,
    ConnectionRepository.Default,
    PendingGrantRepository.Default,
    StateRepository.Default,
    EventRepository.Default,
    WebhookRepository.Default,
    TokenCipher.Default,
    StatusChangesLive
  ).pipe(Layer.provideMerge(catalog))

export const ServicesLive = makeServices(PlatformCatalog.Default)
