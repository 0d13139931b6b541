import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import type { Settings } from "../config/Settings.js"
import { allowedOriginsOf, originPolicyOf } from "../oauth/redirectPolicy.js"
import { jsonForScript } from "./callbackPage.js"

/** assets/ at the package root: the same two levels up from src/http and dist/http. */
export const assetsDirectory = fileURLToPath(new URL("../../assets/", import.meta.url))

const asset = (name: string) => readFileSync(`${assetsDirectory}${name}`, "utf8")
const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`

/** The origins the page answers to: the redirect policy's (FRONTEND_URL's and OAUTH_ALLOWED_ORIGINS), each once. */
export const pageOrigins = (settings: Settings) => [...new Set(allowedOriginsOf(originPolicyOf(settings)))]

/**
 * The connect page, whole: its style and script inline, allowed by their hashes and nothing
 * else (no CDN, no font, no other origin); framed only by the allowed origins; the session's
 * secret, in the fragment, is never sent to a server.
 */
export const connectPage = (settings: Settings) => {
  const style = asset("connect-page.css")
  const script = asset("connect-page.js")
  const origins = pageOrigins(settings)
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Connect your accounts</title>
<style>${style}</style>
</head>
<body>
<main>
<h1>Connect your accounts</h1>
<p>Choose the accounts this application may use. You can come back and change them at any time.</p>
<ul id="platforms" aria-label="Platforms"></ul>
<div id="notice" role="status" aria-live="polite"></div>
<div class="footer"><button type="button" id="done">Done</button></div>
</main>
<script type="application/json" id="config">${jsonForScript({ origins })}</script>
<script>${script}</script>
</body>
</html>
`
  const contentSecurityPolicy = [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(style)}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    `frame-ancestors ${origins.join(" ")}`
  ].join("; ")
  return { html, contentSecurityPolicy }
}

/** GET /connect, the page; GET /connect.js, the front end's helper (an ES module any origin may import). */
export const ConnectPageRoutes = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const settings = yield* AppConfig
    const page = connectPage(settings)
    const helper = asset("connect.js")
    yield* router.get(
      "/connect",
      Effect.succeed(HttpServerResponse.html(page.html).pipe(HttpServerResponse.setHeaders({
        "content-security-policy": page.contentSecurityPolicy,
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff"
      })))
    )
    // The root of the service points to its documentation.
    yield* router.get("/", Effect.succeed(HttpServerResponse.redirect("/docs", { status: 302 })))
    yield* router.get(
      "/connect.js",
      Effect.succeed(HttpServerResponse.text(helper, { contentType: "text/javascript; charset=utf-8" }).pipe(HttpServerResponse.setHeaders({
        "access-control-allow-origin": "*",
        "cache-control": "public, max-age=300",
        "x-content-type-options": "nosniff"
      })))
    )
  })
)
