import { Layer } from "effect"
import { TokenCipher } from "./crypto/TokenCipher.js"
import { ConnectionRepository } from "./db/ConnectionRepository.js"
import { EventRepository } from "./db/EventRepository.js"
import { PendingGrantRepository } from "./db/PendingGrantRepository.js"
import { StateRepository } from "./db/StateRepository.js"
import { Grants } from "./integrations/Grants.js"
import { Integrations } from "./integrations/Integrations.js"
import { Refresher } from "./integrations/Refresher.js"
import { StatusChangesLive } from "./integrations/StatusChanges.js"
import * as UndiciClient from "./oauth/undiciClient.js"
import { PlatformCatalog, ProviderRegistry } from "./registry/ProviderRegistry.js"

/** Repositories, providers and flows over storage, for the platforms of `catalog`. */
export const makeServices = (catalog: Layer.Layer<PlatformCatalog>) => Integrations.Default.pipe(
  Layer.provideMerge(Grants.Default),
  Layer.provideMerge(Refresher.Default),
  Layer.provideMerge(ProviderRegistry.DefaultWithoutDependencies.pipe(Layer.provide([catalog, UndiciClient.layer]))),
  Layer.provideMerge(
    Layer.mergeAll(ConnectionRepository.DefaultWithoutDependencies, PendingGrantRepository.Default, StateRepository.Default, EventRepository.Default)
  ),
  Layer.provideMerge(TokenCipher.Default),
  Layer.provideMerge(StatusChangesLive)
)

export const ServicesLive = makeServices(PlatformCatalog.Default)

