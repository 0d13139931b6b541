import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Effect, Exit, Record, Redacted, Scope } from "effect"
import pg from "pg"
import { type BrowserContext, chromium, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { pgClientLayer } from "../src/db/Database.js"
import { migrate } from "../src/db/migrations.js"
import { type Instance, startInstance } from "../test/support/app.js"
import { fakeServers } from "../test/support/catalog.js"
import { testSettings } from "../test/support/config.js"
import { freshDatabase, testPool } from "../test/support/database.js"
import type { FakeOAuthPlatform } from "../test/support/platforms/index.js"
import { scoped } from "../test/support/platforms/server.js"

// The callbacks given to page.evaluate run in the browser; the project is typed without the DOM.
declare const window: any
declare const document: any
type HTMLButtonElement = { click: () => void }

/** A port nobody listens on yet. */
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer()
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as AddressInfo).port
      s.close(() => resolve(port))
    })
  })

/** A page of the application (or of a stranger), on an origin of its own: `localhost`, not the service's 127.0.0.1. */
const startSite = async (html: string) => {
  const server: Server = createServer((_, response) => response.writeHead(200, { "content-type": "text/html" }).end(html))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  return { origin: `http://localhost:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())) }
}

/** The application's page: a button that opens the connect page with openConnect, every message kept. */
const hostPage = (serviceOrigin: string) => `<!doctype html><html><body>
<button id="open">Connect accounts</button>
<script type="module">
  import { openConnect } from "${serviceOrigin}/connect.js"
  window.events = []
  window.outcome = null
  document.getElementById("open").addEventListener("click", () => {
    openConnect({ url: window.connectUrl, onEvent: (e) => window.events.push(e) })
      .then((r) => { window.outcome = { resolved: r } }, (e) => { window.outcome = { rejected: e.code } })
  })
</script></body></html>`

/** A page on an origin that is not allowed, opening the connect page and listening to whatever it posts. */
const foreignPage = `<!doctype html><html><body><script>
  window.heard = []
  window.addEventListener("message", (e) => window.heard.push(e.data))
</script></body></html>`

const SHOTS = "docs"

describe("the connect page in Chromium", () => {
  const scope = Effect.runSync(Scope.make())
  const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => Effect.runPromise(Scope.extend(effect, scope))
  let instance: Instance
  let fakes: Record<string, FakeOAuthPlatform>
  let context: BrowserContext
  let host: Awaited<ReturnType<typeof startSite>>
  let foreign: Awaited<ReturnType<typeof startSite>>
  let profile: string
  let origin: string
  let databaseUrl: string

  beforeAll(async () => {
    const port = await freePort()
    origin = `http://127.0.0.1:${port}`
    host = await startSite(hostPage(origin))
    foreign = await startSite(foreignPage)
    databaseUrl = await run(freshDatabase)
    await run(migrate().pipe(Effect.provide(pgClientLayer(Redacted.make(databaseUrl), testPool)), Effect.orDie))
    fakes = await run(Effect.all(Record.map(fakeServers, (start) => scoped(() => start()))))
    const env = Object.fromEntries(Object.entries(fakes).flatMap(([key, fake]) => Object.entries(fake.env(`${origin}/oauth/${key}/callback`))))
    instance = await run(startInstance({
      databaseUrl,
      env,
      port,
      settings: {
        frontendUrl: new URL(origin),
        allowedOrigins: [host.origin],
        connect: { sessionTtl: Duration.minutes(30), pageUrl: new URL(`${origin}/connect`) },
        oauth: { ...testSettings().oauth, confirmation: "required" }
      }
    }).pipe(Effect.orDie))
    profile = mkdtempSync(join(tmpdir(), "oi-chromium-"))
    // A fresh user data directory per run.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium",
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
    })
  })

  afterAll(async () => {
    await context?.close()
    await host?.close()
    await foreign?.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true })
  })

  const api = async (path: string, init: RequestInit = {}) => {
    const response = await instance.request(path, init)
    return { status: response.status, body: (await response.json()) as Record<string, any> }
  }
  const session = async (body: Record<string, unknown>) => {
    const created = await api("/v1/connect/sessions", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    expect(created.status).toBe(201)
    return created.body["connect_url"] as string
  }
  const statusOf = async (user: string, platform: string) => (await api(`/v1/users/${user}/connections/${platform}`)).body["status"] as string
  const stateOn = (page: Page, platform: string) => page.locator(`li[data-platform="${platform}"] .state`)
  /** What the application's back end does with a pending grant the page handed over. */
  const confirmed = new Set<string>()
  const confirmFrom = async (hostTab: Page, user: string, platform: string) => {
    // A pending grant not confirmed yet: the page hands each one over once.
    await hostTab.waitForFunction(
      ([p, used]) => (window as any).events.some((e: any) => e.event === "pending" && e.platform === p && !used.includes(e.confirmation)),
      [platform, [...confirmed]] as const
    )
    const events = (await hostTab.evaluate(() => (window as any).events)) as Array<{ event: string; platform: string; confirmation?: string }>
    const pending = events.find((e) => e.event === "pending" && e.platform === platform && !confirmed.has(e.confirmation ?? ""))
    confirmed.add(pending?.confirmation ?? "")
    expect(pending?.confirmation).toMatch(/^[A-Za-z0-9_-]+$/)
    const answer = await api(`/v1/users/${user}/connections/${platform}/confirm`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ confirmation: pending?.confirmation })
    })
    expect(answer.status).toBe(200)
  }

  it("from the application's page: connect in a popup, confirmed by the application, reconnect, disconnect, done", async () => {
    const user = "br-user"
    const url = await session({ user_id: user, platforms: ["gsc", "bing"], allow_disconnect: true })
    const tab = await context.newPage()
    await tab.goto(host.origin)
    await tab.evaluate((u) => void ((window as any).connectUrl = u), url)
    const [connectPage] = await Promise.all([tab.waitForEvent("popup"), tab.click("#open")])
    await connectPage.waitForSelector('li[data-platform="gsc"]')
    // The secret has left the address bar.
    expect(new URL(connectPage.url()).hash).toBe("")
    expect(await stateOn(connectPage, "gsc").textContent()).toBe("Not connected")
    await connectPage.setViewportSize({ width: 1024, height: 640 })
    mkdirSync(SHOTS, { recursive: true })
    await connectPage.screenshot({ path: join(SHOTS, "connect-page.png") })

    // Connect: the platform's popup consents at once and the callback hands the result back.
    await connectPage.getByRole("button", { name: "Connect Google Search Console" }).click()
    await confirmFrom(tab, user, "gsc")
    expect(await statusOf(user, "gsc")).toBe("connected")
    // The page sees the confirmed grant by itself.
    await expect.poll(() => stateOn(connectPage, "gsc").textContent(), { timeout: 10_000 }).toMatch(/^Connected/)

    // Reconnect goes through the flow again.
    const before = fakes["gsc"]!.requestsTo("token").length
    await connectPage.getByRole("button", { name: "Reconnect Google Search Console" }).click()
    await expect.poll(() => fakes["gsc"]!.requestsTo("token").length).toBeGreaterThan(before)
    await confirmFrom(tab, user, "gsc")

    // Disconnect, as the session allows it.
    await connectPage.getByRole("button", { name: "Disconnect Google Search Console" }).click()
    await expect.poll(() => stateOn(connectPage, "gsc").textContent()).toBe("Not connected")
    expect(await statusOf(user, "gsc")).toBe("disconnected")

    // Done: the application's promise resolves and the page closes.
    await Promise.all([connectPage.waitForEvent("close"), connectPage.click("#done")])
    await tab.waitForFunction(() => (window as any).outcome !== null)
    expect(await tab.evaluate(() => (window as any).outcome)).toEqual({ resolved: { event: "done", platform: "gsc", status: "disconnected" } })
    await tab.close()
  })

  it("keyboard alone: Tab to the button, Enter, and the platform connects; at phone width", async () => {
    const user = "br-keys"
    const url = await session({ user_id: user, platforms: ["bing"] })
    const tab = await context.newPage()
    await tab.goto(host.origin)
    await tab.evaluate((u) => void ((window as any).connectUrl = u), url)
    await tab.focus("#open")
    const [connectPage] = await Promise.all([tab.waitForEvent("popup"), tab.keyboard.press("Enter")])
    await connectPage.setViewportSize({ width: 390, height: 760 })
    await connectPage.waitForSelector('li[data-platform="bing"] button')
    await connectPage.keyboard.press("Tab")
    const focused = await connectPage.evaluate(() => document.activeElement?.getAttribute("aria-label"))
    expect(focused).toBe("Connect Bing Webmaster Tools")
    await connectPage.screenshot({ path: join(SHOTS, "connect-page-phone.png") })
    await connectPage.keyboard.press("Enter")
    await confirmFrom(tab, user, "bing")
    expect(await statusOf(user, "bing")).toBe("connected")
    await connectPage.close()
    await tab.close()
  })

  it("openConnect rejects with a clear error when its popup is blocked, or closed before the user is done", async () => {
    const url = await session({ user_id: "br-reject", platforms: ["gsc"] })
    const blocked = await context.newPage()
    await blocked.addInitScript(() => void (window.open = () => null))
    await blocked.goto(host.origin)
    await blocked.evaluate((u) => void (window.connectUrl = u), url)
    await blocked.click("#open")
    await blocked.waitForFunction(() => window.outcome !== null)
    expect(await blocked.evaluate(() => window.outcome)).toEqual({ rejected: "popup_blocked" })
    await blocked.close()

    const early = await context.newPage()
    await early.goto(host.origin)
    await early.evaluate((u) => void (window.connectUrl = u), url)
    const [connectPage] = await Promise.all([early.waitForEvent("popup"), early.click("#open")])
    await connectPage.waitForSelector('li[data-platform="gsc"]')
    await connectPage.close()
    await early.waitForFunction(() => window.outcome !== null)
    expect(await early.evaluate(() => window.outcome)).toEqual({ rejected: "closed" })
    await early.close()
  })

  it("a blocked popup falls back to leaving the page and coming back to it", async () => {
    const user = "br-blocked"
    const url = await session({ user_id: user, platforms: ["gsc"] })
    const page = await context.newPage()
    await page.addInitScript(() => void (window.open = () => null))
    await page.goto(url)
    await page.getByRole("button", { name: "Connect Google Search Console" }).click()
    // Back on the page, with the pending result, the session kept in the tab.
    await page.waitForURL((u) => u.pathname === "/connect" && u.search === "", { timeout: 20_000 })
    await expect.poll(() => page.locator("#notice").textContent()).toMatch(/authorised/)
    expect(await statusOf(user, "gsc")).toBe("not_connected")
    await page.close()
  })

  it("an expired session gets a clear page, not an error dump", async () => {
    const url = await session({ user_id: "br-expired", platforms: ["gsc"] })
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    await client.query(`update connect_sessions set expires_at = now() - interval '1 second' where user_id = 'br-expired'`)
    await client.end()
    const page = await context.newPage()
    await page.goto(url)
    await expect.poll(() => page.locator("#notice").textContent()).toBe("This connect link has expired: ask the application for a new one")
    expect(await page.locator("li").count()).toBe(0)
    await page.close()
  })

  it("a page on an origin that is not allowed hears nothing from it, and cannot frame it", async () => {
    const url = await session({ user_id: "br-foreign", platforms: ["gsc"] })
    const stranger = await context.newPage()
    await stranger.goto(foreign.origin)
    const [connectPage] = await Promise.all([stranger.waitForEvent("popup"), stranger.evaluate((u) => void window.open(u), url)])
    await connectPage.waitForSelector('li[data-platform="gsc"]')
    await connectPage.evaluate(() => (document.getElementById("done") as HTMLButtonElement).click())
    await connectPage.waitForEvent("close")
    expect(await stranger.evaluate(() => (window as any).heard)).toEqual([])
    // Framed by it: refused by frame-ancestors.
    const blocked = new Promise<boolean>((resolve) => {
      stranger.on("console", (m) => {
        if (/frame-ancestors/.test(m.text())) resolve(true)
      })
      setTimeout(() => resolve(false), 5_000)
    })
    await stranger.evaluate((u) => {
      const f = document.createElement("iframe")
      f.src = u
      document.body.append(f)
    }, url)
    expect(await blocked).toBe(true)
    await stranger.close()
  })
})
