import { createHash } from "node:crypto"

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }

export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c)

/** JSON safe inside a <script> element: no "</script>", no HTML comment, no line separators. */
export const jsonForScript = (value: unknown): string =>
  JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029")

/** Sent with every answer of the callback: its URL held a code and a state. */
export const callbackSecurityHeaders = {
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff"
} as const

export interface CallbackMessage {
  readonly type: "oauth-integrations:callback"
  readonly platform: string
  readonly status: "connected" | "pending" | "error"
  readonly reason: string | null
  /** With status "pending": the one-time code the application confirms for the user who completed the flow. */
  readonly confirmation?: string
}

/**
 * The popup's page: posts the result to one origin (FRONTEND_URL's, never "*") and closes.
 * The script is allowed by its hash in the Content-Security-Policy; nothing else runs.
 */
export const popupPage = (message: CallbackMessage, targetOrigin: string) => {
  const script = `(function(){var m=${jsonForScript(message)};var o=${jsonForScript(targetOrigin)};` +
    `if(window.opener){window.opener.postMessage(m,o);}window.close();})();`
  const hash = createHash("sha256").update(script, "utf8").digest("base64")
  const text = message.status === "connected"
    ? "Connected. You can close this window."
    : message.status === "pending"
    ? "Authorised. You can close this window."
    : "The connection did not complete. You can close this window."
  const html = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>${escapeHtml(message.platform)}</title></head>
<body>
<p>${escapeHtml(text)}</p>
<script>${script}</script>
</body>
</html>
`
  return { html, contentSecurityPolicy: `default-src 'none'; script-src 'sha256-${hash}'; base-uri 'none'; form-action 'none'` }
}
