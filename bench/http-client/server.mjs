// A token endpoint for bench/http-client: answers every POST with a fresh token response, at once.
import { randomBytes } from "node:crypto"
import { createServer } from "node:http"

const server = createServer((req, res) => {
  req.resume()
  req.on("end", () => {
    const body = JSON.stringify({
      access_token: `at-${randomBytes(18).toString("base64url")}`,
      refresh_token: `rt-${randomBytes(18).toString("base64url")}`,
      expires_in: 3600,
      token_type: "Bearer"
    })
    res.writeHead(200, { "content-type": "application/json" })
    res.end(body)
  })
})
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`))
