import { readFileSync } from "node:fs"
import { Schema } from "effect"

const PackageJson = Schema.parseJson(Schema.Struct({ version: Schema.String }))

/** package.json at the package root: the same two levels up from src/oauth and dist/oauth. */
export const packageVersion = Schema.decodeUnknownSync(PackageJson)(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version

/** Sent with every request to a platform: some (GitHub) refuse a request without a User-Agent. */
export const userAgent = `oauth-integrations/${packageVersion}`
