import type { PlatformDefinition } from "../../src/platforms/definition.js"
import { platforms } from "../../src/registry/platforms.js"
import { forge } from "./forge.js"
import { startFakeForge } from "./platforms/forge.js"
import { type FakeOAuthPlatform, type FakeOptions, startFakeBing, startFakeGsc, startFakeWix, startFakeWordpress } from "./platforms/index.js"

/**
 * The platforms the test suite runs: the service's own (src/registry/platforms.ts) and Forge,
 * which exists only in the tests. Every instance the tests start offers these unless told
 * otherwise, and a test that means "every platform" enumerates this list: a platform added
 * here is covered without a change to it.
 */
export const suiteCatalog: ReadonlyArray<PlatformDefinition> = [...platforms, forge]

/** The fake of each platform of the catalog, speaking its wire format. */
export const fakeServers = {
  gsc: startFakeGsc,
  bing: startFakeBing,
  wordpress: startFakeWordpress,
  wix: startFakeWix,
  forge: startFakeForge
} satisfies Readonly<Record<string, (options?: FakeOptions) => Promise<FakeOAuthPlatform>>>
