import { describe, expect, it } from "@effect/vitest"
import { escapeHtml, jsonForScript, popupPage } from "../../src/http/callbackPage.js"

describe("popup page", () => {
  const page = popupPage({ type: "oauth-integrations:callback", platform: "gsc", status: "error", reason: "access_denied" }, "https://app.example.com")

  it("posts the result to FRONTEND_URL's origin only, never '*'", () => {
    expect(page.html).toContain(`postMessage(m,o)`)
    expect(page.html).toContain(`var o="https://app.example.com"`)
    expect(page.html).not.toMatch(/postMessage\([^)]*['"]\*['"]/)
  })

  it("allows its one script by hash and nothing else", () => {
    expect(page.contentSecurityPolicy).toMatch(/^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/=]+'/)
  })

  it("escapes what it reflects", () => {
    const hostile = popupPage({ type: "oauth-integrations:callback", platform: "</script><script>alert(1)</script>", status: "error", reason: "\u2028x" }, "https://app.example.com")
    expect(hostile.html).not.toContain("<script>alert(1)")
    expect(hostile.html.match(/<script>/g)).toHaveLength(1)
    expect(hostile.html).toContain("\\u003c/script\\u003e")
  })

  it("escapes HTML and script JSON", () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
    expect(jsonForScript({ s: "</script><!--" })).toBe("{\"s\":\"\\u003c/script\\u003e\\u003c!--\"}")
  })
})
