// CPU per token request of the HTTP client the platforms are called through. `npm run bench:http-client`.
// The same form POST, answer read as JSON, 64 in flight, against a local server in its own
// process (its CPU is not counted): raw undici (the baseline), @effect/platform-node's undici
// HttpClient, and the service's own (src/oauth/undiciClient.ts). Rounds alternate.
import { spawn } from "node:child_process"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Duration, Effect, Layer } from "effect"
import { request } from "undici"
import { PlatformHttp } from "../../src/oauth/PlatformHttp.js"
import * as UndiciClient from "../../src/oauth/undiciClient.js"

const REQUESTS = Number(process.env["BENCH_REQUESTS"] ?? "20000")
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? "3")
const CONCURRENCY = 64

const server = spawn("node", ["bench/http-client/server.mjs"], { stdio: ["ignore", "pipe", "inherit"] })
const port = await new Promise<string>((resolve) => server.stdout.once("data", (d: Buffer) => resolve(d.toString().trim())))
const url = `http://127.0.0.1:${port}/oauth/token`
const params = { grant_type: "refresh_token", refresh_token: "rt-abcdefghijklmnopqrstuvwxyz", client_id: "bench-client", client_secret: "bench-secret" }
const form = new URLSearchParams(params).toString()

const raw = async (n: number) => {
  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next++ < n) {
      const response = await request(url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: form
      })
      await response.body.json()
    }
  }))
}

const viaEffect = (layer: Layer.Layer<HttpClient.HttpClient>) => (n: number) => {
  const one = Effect.flatMap(HttpClient.HttpClient, (client) =>
    Effect.flatMap(client.execute(HttpClientRequest.post(url).pipe(HttpClientRequest.acceptJson, HttpClientRequest.bodyUrlParams(params))), (r) => r.json))
  // As the service runs: tracing off.
  return Effect.runPromise(
    Effect.forEach(Array.from({ length: n }), () => one, { concurrency: CONCURRENCY, discard: true }).pipe(
      Effect.provide(layer),
      Effect.withTracerEnabled(false),
      Effect.scoped
    )
  )
}

/** A platform's client as the registry makes it: the default 10 s request timeout, on a timer of each request's own. */
const platformClient = Layer.effect(HttpClient.HttpClient, Effect.map(PlatformHttp, (http) => http.client(Duration.seconds(10)))).pipe(
  Layer.provide(UndiciClient.layer)
)

const clients: ReadonlyArray<readonly [string, (n: number) => Promise<void>]> = [
  ["raw undici (baseline)", raw],
  ["@effect/platform-node undici HttpClient", viaEffect(NodeHttpClient.layerUndici)],
  ["service's HttpClient (src/oauth/undiciClient.ts)", viaEffect(platformClient)]
]

const cpuPerRequest = async (run: (n: number) => Promise<void>) => {
  const before = process.cpuUsage()
  await run(REQUESTS)
  const used = process.cpuUsage(before)
  return (used.user + used.system) / REQUESTS
}

const results = new Map<string, Array<number>>(clients.map(([name]) => [name, []]))
for (const [, run] of clients) await run(1000) // warm-up
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of clients) {
    results.get(name)?.push(await cpuPerRequest(run))
    process.stderr.write(`[bench:http-client] round ${round + 1}: ${name}\n`)
  }
}
server.kill()

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN
const baseline = median(results.get(clients[0]?.[0] ?? "") ?? [])
const lines = [
  `${REQUESTS} token requests per round, ${CONCURRENCY} in flight, ${ROUNDS} alternating rounds; CPU of the client process per request (median):`,
  "",
  "| client | µs CPU per request | × baseline | each round |",
  "|---|---:|---:|---|",
  ...clients.map(([name]) => {
    const xs = results.get(name) ?? []
    return `| ${name} | ${median(xs).toFixed(0)} | ${(median(xs) / baseline).toFixed(2)} | ${xs.map((x) => x.toFixed(0)).join(" / ")} |`
  })
]
process.stdout.write(lines.join("\n") + "\n")
process.exit(0)
