import { createHash } from "node:crypto"
import { Script } from "node:vm"
import { layer } from "@effect/vitest"
import { Effect } from "effect"
import { expect } from "vitest"
import { call } from "../support/flow.js"
import { FRONTEND, Harness, HarnessLive } from "../support/harness.js"

const promise = <A>(make: () => Promise<A>) => Effect.promise(make)

layer(HarnessLive({ settings: { allowedOrigins: ["https://other.example.com"] } }), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
  it.effect("GET /connect: one self-contained page whose inline script and style alone the policy allows, framed only by the allowed origins", () =>
    Effect.gen(function*() {
      const { instance } = yield* Harness
      const response = yield* call(instance, "/connect", { key: null })
      expect(response.status).toBe(200)
      expect(response.headers.get("content-type")).toMatch(/^text\/html/)
      expect(response.headers.get("cache-control")).toBe("no-store")
      expect(response.headers.get("referrer-policy")).toBe("no-referrer")
      const html = yield* promise(() => response.text())
      const policy = Object.fromEntries((response.headers.get("content-security-policy") ?? "").split(";").map((d) => {
        const [name, ...values] = d.trim().split(/\s+/)
        return [name, values]
      }))
      expect(policy["default-src"]).toEqual(["'none'"])
      expect(policy["frame-ancestors"]).toEqual([new URL(FRONTEND).origin, "https://other.example.com"])
      expect(policy["connect-src"]).toEqual(["'self'"])
      const hashOf = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`
      const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1] ?? "")
      const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1] ?? "")
      expect(scripts).toHaveLength(1)
      expect(styles).toHaveLength(1)
      expect(policy["script-src"]).toEqual([hashOf(scripts[0]!)])
      expect(policy["style-src"]).toEqual([hashOf(styles[0]!)])
      // It compiles, and it loads nothing from anywhere: no src, no href, no url(), no @import.
      expect(() => new Script(scripts[0]!)).not.toThrow()
      expect(html).not.toMatch(/\s(src|href)=|url\(|@import/)
      const config = JSON.parse(/<script type="application\/json" id="config">([^<]*)<\/script>/.exec(html)?.[1] ?? "{}") as { origins: Array<string> }
      expect(config.origins).toEqual([new URL(FRONTEND).origin, "https://other.example.com"])
      // Labels for the keyboard and screen readers; a viewport for phones.
      expect(html).toContain('name="viewport"')
      expect(html).toContain('aria-live="polite"')
      expect(scripts[0]).toContain("aria-label")
    }))

  it.effect("GET /connect.js: an ES module exporting openConnect, importable from any origin", () =>
    Effect.gen(function*() {
      const { instance } = yield* Harness
      const response = yield* call(instance, "/connect.js", { key: null })
      expect(response.status).toBe(200)
      expect(response.headers.get("content-type")).toBe("text/javascript; charset=utf-8")
      expect(response.headers.get("access-control-allow-origin")).toBe("*")
      const text = yield* promise(() => response.text())
      const module = (yield* promise(() => import(`data:text/javascript,${encodeURIComponent(text)}`))) as Record<string, unknown>
      expect(typeof module["openConnect"]).toBe("function")
      expect(typeof module["ConnectError"]).toBe("function")
    }))
})
