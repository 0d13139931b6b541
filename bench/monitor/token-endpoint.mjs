// The platform of `npm run bench:monitor`: an OAuth 2.0 token endpoint in a process of its own,
// so that its work is not the benchmark's or the monitor's. It answers a refresh_token grant
// (form body, client credentials in the body) after LATENCY_MS with a new access token and a
// rotated refresh token; a refresh token it has seen used before is refused with invalid_grant,
// as a rotating platform does. Any other refresh token is taken as live: the benchmark seeds
// connections with random ones. GET /stats gives {refreshes, invalidGrants, reused}.
// Prints its port on stdout once listening; exits when its stdin closes (the benchmark ended,
// however it ended).
import { randomBytes } from "node:crypto"
import { createServer } from "node:http"

const latencyMs = Number(process.env["LATENCY_MS"] ?? "20")
const clientId = process.env["CLIENT_ID"] ?? ""
const clientSecret = process.env["CLIENT_SECRET"] ?? ""

const used = new Set()
const stats = { refreshes: 0, invalidGrants: 0, reused: 0 }

const reply = (res, status, body) => {
  const text = JSON.stringify(body)
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
  res.end(text)
}

const token = (prefix) => `${prefix}-${randomBytes(24).toString("base64url")}`

const refresh = (form) => {
  if (form.get("client_id") !== clientId || form.get("client_secret") !== clientSecret) {
    return [401, { error: "invalid_client", error_description: "unknown client" }]
  }
  const presented = form.get("refresh_token")
  if (form.get("grant_type") !== "refresh_token" || presented === null) {
    return [400, { error: "invalid_request", error_description: "a refresh_token grant is expected" }]
  }
  if (used.has(presented)) {
    stats.invalidGrants++
    stats.reused++
    return [400, { error: "invalid_grant", error_description: "the refresh token was already used" }]
  }
  used.add(presented)
  stats.refreshes++
  return [200, { access_token: token("bench-at"), refresh_token: token("bench-rt"), expires_in: 3600, token_type: "Bearer" }]
}

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/stats") return reply(res, 200, stats)
  const chunks = []
  req.on("data", (chunk) => chunks.push(chunk))
  req.on("end", () => {
    const [status, body] = req.method === "POST" && req.url === "/oauth/token"
      ? refresh(new URLSearchParams(Buffer.concat(chunks).toString("utf8")))
      : [404, { error: "not_found" }]
    setTimeout(() => reply(res, status, body), latencyMs)
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`))
process.stdin.on("end", () => process.exit(0))
process.stdin.resume()
