import { bing } from "../platforms/bing.js"
import type { PlatformDefinition } from "../platforms/definition.js"
import { gsc } from "../platforms/gsc.js"
import { wix } from "../platforms/wix.js"
import { wordpress } from "../platforms/wordpress.js"

/** Every platform the service offers: adding one is its module and one line here. */
export const platforms: ReadonlyArray<PlatformDefinition> = [
  gsc,
  bing,
  wordpress,
  wix
]
