import { readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { randomKey } from "../support/config.js"
import { FRONTEND, redirectUri } from "../support/harness.js"
import { type ReceivedSpan, startCollector, textsOf } from "../support/otlpCollector.js"
import { startFakeGsc } from "../support/platforms/index.js"
import { eventually, keyVariable, migratedDatabase, scratchDirectory, seedDue, serviceEnv, startService, storedConnections } from "../support/processes.js"

const key = randomKey("k1")
const API_KEY = "tracing-api-key-0123456789abcdef"
const TOKEN_KEY = "tracing-token-key-0123456789abcdef"
const version = (JSON.parse(readFileSync("package.json", "utf8")) as { readonly version: string }).version

/** The W3C trace context a caller sends: its trace and span ids. */
const CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
const CALLER_SPAN = "00f067aa0ba902b7"

const SERVER = 2
const CLIENT = 3

describe("OpenTelemetry traces over OTLP/HTTP", () => {
  it("a connect flow and a monitor pass reach the collector as linked spans, with no secret or user-supplied URL in any of them", async () => {
    const collector = await startCollector()
    // Tokens expiring within REFRESH_AHEAD: the pass after the connection refreshes it.
    const fake = await startFakeGsc({ expiresIn: 60 })
    try {
      const url = await migratedDatabase()
      const service = startService(["serve"], {
        ...serviceEnv(key),
        API_KEYS: API_KEY,
        TOKEN_API_KEYS: TOKEN_KEY,
        DATABASE_URL: url,
        MONITOR_INTERVAL: "1s",
        REFRESH_AHEAD: "10m",
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_BSP_SCHEDULE_DELAY: "100",
        OTEL_SERVICE_NAME: "integrations-under-test",
        OTEL_RESOURCE_ATTRIBUTES: "deployment.region=eu-test,team=growth%20tools",
        ...fake.env(redirectUri("gsc"))
      }, scratchDirectory())
      const line = await service.waitForLine(/Listening on http:\/\/127\.0\.0\.1:\d+/)
      const base = /http:\/\/127\.0\.0\.1:\d+/.exec(line)?.[0] ?? ""
      const user = "trace-user-7"
      const returnTo = `${FRONTEND}/settings/integrations/private-landing?from=trace-test`

      // 1. The back end asks where to send the user, inside a trace of its own.
      const authorize = await fetch(`${base}/v1/users/${user}/connections/gsc/authorize`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json", traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` },
        body: JSON.stringify({ return_to: returnTo })
      })
      expect(authorize.status).toBe(200)
      const { auth_url, state } = (await authorize.json()) as { readonly auth_url: string; readonly state: string }
      // 2. The browser: the platform consents, and sends it back to the callback with a code.
      const consent = await fetch(auth_url, { redirect: "manual" })
      const back = new URL(consent.headers.get("location") ?? "")
      const code = back.searchParams.get("code") ?? ""
      expect(code).not.toBe("")
      const callback = await fetch(`${base}/oauth/gsc/callback${back.search}`, { redirect: "manual" })
      expect(callback.status).toBe(302)
      const confirmation = new URL(callback.headers.get("location") ?? "").searchParams.get("confirmation") ?? ""
      expect(confirmation).not.toBe("")
      // 3. The application confirms, then a back end fetches a token.
      const confirmed = await fetch(`${base}/v1/users/${user}/connections/gsc/confirm`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ confirmation })
      })
      expect(confirmed.status).toBe(200)
      const token = await fetch(`${base}/v1/users/${user}/connections/gsc/token`, { headers: { authorization: `Bearer ${TOKEN_KEY}` } })
      expect(token.status).toBe(200)

      // 4. A monitor pass refreshes the new connection.
      const refreshingPass = () =>
        collector.spans.find((s) => s.name === "monitor.pass" && collector.descendantsOf(s).some((d) => d.name === "platform.refresh"))
      await eventually(() => refreshingPass() !== undefined, 30_000, "a monitor pass that refreshed, exported")
      service.signal("SIGTERM")
      expect((await service.exit).code).toBe(0)

      const spans = collector.spans
      const named = (name: string) => spans.filter((s) => s.name === name)
      const one = (name: string): ReceivedSpan => {
        const found = named(name)
        expect(found.map((s) => s.name), name).toContain(name)
        return found[0]!
      }

      // The resource: the service's name and version, and the operator's attributes.
      expect(spans[0]?.resource).toMatchObject({
        "service.name": "integrations-under-test",
        "service.version": version,
        "deployment.region": "eu-test",
        team: "growth tools",
        "deployment.environment.name": "development"
      })

      // A server span per request, named by its route, child of the caller's trace when it sends one.
      const authorizeSpan = one("POST /v1/users/{user_id}/connections/gsc/authorize")
      expect(authorizeSpan).toMatchObject({ kind: SERVER, traceId: CALLER_TRACE, parentSpanId: CALLER_SPAN })
      expect(authorizeSpan.attributes).toMatchObject({ "http.request.method": "POST", "http.route": "/v1/users/:user_id/connections/:platform/authorize", "http.response.status_code": 200 })
      const callbackSpan = one("GET /oauth/gsc/callback")
      expect(callbackSpan).toMatchObject({ kind: SERVER, parentSpanId: undefined })
      expect(callbackSpan.attributes["http.response.status_code"]).toBe(302)
      one("POST /v1/users/{user_id}/connections/gsc/confirm")
      expect(one("GET /v1/users/{user_id}/connections/gsc/token").attributes["http.response.status_code"]).toBe(200)

      // The callback's platform call: an operation span over its attempt, with the outcome and the status.
      const exchange = collector.childrenOf(callbackSpan).concat(collector.descendantsOf(callbackSpan)).find((s) => s.name === "platform.exchange_code")
      expect(exchange?.attributes).toMatchObject({ platform: "gsc", operation: "exchange_code", outcome: "ok", attempts: 1 })
      const attempt = collector.childrenOf(exchange!).find((s) => s.name === "platform.exchange_code.attempt")
      expect(attempt).toMatchObject({ kind: CLIENT, traceId: callbackSpan.traceId })
      expect(attempt?.attributes).toMatchObject({ platform: "gsc", operation: "exchange_code", attempt: 1, outcome: "ok", "http.response.status_code": 200 })
      // And its SQL statements, each a client span of the request's trace.
      const statements = collector.descendantsOf(callbackSpan).filter((s) => s.name === "sql.execute")
      expect(statements.length).toBeGreaterThan(0)
      expect(statements.every((s) => s.kind === CLIENT && s.attributes["db.system.name"] === "postgresql")).toBe(true)
      expect(collector.descendantsOf(authorizeSpan).some((s) => s.name === "sql.execute" && s.traceId === CALLER_TRACE)).toBe(true)

      // The monitor pass: a root span with its figures, over the refresh and its statements.
      const pass = refreshingPass()!
      expect(pass.parentSpanId).toBeUndefined()
      expect(Number(pass.attributes["refreshed"])).toBeGreaterThanOrEqual(1)
      const refresh = collector.descendantsOf(pass).find((s) => s.name === "platform.refresh")
      expect(refresh?.attributes).toMatchObject({ platform: "gsc", operation: "refresh", outcome: "ok" })
      expect(collector.descendantsOf(refresh!).some((s) => s.name === "platform.refresh.attempt" && s.attributes["attempt"] === 1)).toBe(true)
      expect(collector.descendantsOf(pass).some((s) => s.name === "sql.execute")).toBe(true)

      // No token, code, secret, state or user-supplied URL anywhere in any span.
      const [stored] = await storedConnections(url, key, "gsc", [user])
      expect(stored?.accessToken).toEqual(expect.any(String))
      expect(stored?.refreshToken).toEqual(expect.any(String))
      expect(fake.clientSecret).toEqual(expect.any(String))
      const secrets = [
        ...fake.issuedTokens(),
        stored?.accessToken,
        stored?.refreshToken,
        code,
        state,
        confirmation,
        API_KEY,
        TOKEN_KEY,
        keyVariable(key).split(":")[1]!,
        fake.clientSecret,
        returnTo,
        "private-landing",
        back.search.slice(1)
      ].filter((s): s is string => typeof s === "string")
      // Every one of them known (none empty: an empty string is in every text).
      expect(secrets.length).toBe(fake.issuedTokens().length + 12)
      expect(secrets.every((s) => s.length >= 6)).toBe(true)
      const leaks = spans.flatMap((span) =>
        textsOf(span).flatMap((text) => secrets.filter((secret) => text.includes(secret)).map((secret) => `${span.name}: ${secret}`))
      )
      expect(leaks).toEqual([])
    } finally {
      await fake.close()
      await collector.close()
    }
  }, 90_000)

  it("`monitor --once` sends its spans in the default encoding (protobuf) before it exits", async () => {
    const collector = await startCollector()
    const fake = await startFakeGsc({ expiresIn: 60 })
    try {
      const url = await migratedDatabase()
      await seedDue(url, key, fake, "gsc", ["once-1", "once-2"])
      const once = startService(["monitor", "--once"], {
        ...serviceEnv(key),
        DATABASE_URL: url,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/custom/traces`,
        ...fake.env(redirectUri("gsc"))
      }, scratchDirectory())
      expect((await once.exit).code).toBe(0)
      expect(fake.stats.refreshes).toBe(2)
      // The default schedule (5 s) has not run: the spans are the ones flushed at the end.
      expect(collector.requests.length).toBeGreaterThan(0)
      expect(collector.requests.every((r) => r.path === "/custom/traces" && r.contentType === "application/x-protobuf")).toBe(true)
      const body = Buffer.concat(collector.requests.map((r) => r.body)).toString("latin1")
      expect(body).toContain("monitor.pass")
      expect(body).toContain("platform.refresh")
      expect(body).not.toContain(fake.issuedTokens()[0]!)

      // The same pass with every trace left out: nothing is sent.
      await seedDue(url, key, fake, "gsc", ["once-3"])
      const before = collector.requests.length
      const refreshed = fake.stats.refreshes
      const unsampled = startService(["monitor", "--once"], {
        ...serviceEnv(key),
        DATABASE_URL: url,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/custom/traces`,
        OTEL_TRACES_SAMPLER: "always_off",
        ...fake.env(redirectUri("gsc"))
      }, scratchDirectory())
      expect((await unsampled.exit).code).toBe(0)
      expect(fake.stats.refreshes).toBeGreaterThan(refreshed)
      expect(collector.requests.length).toBe(before)
    } finally {
      await fake.close()
      await collector.close()
    }
  }, 60_000)
})
