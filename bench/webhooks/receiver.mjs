// The application's endpoint for bench:webhooks: answers every POST with 200 after RECEIVER_DELAY_MS
// (20 ms), and records when each webhook-id arrived. GET /receipts gives [[id, ms], ...];
// GET /count how many ids arrived; POST /reset forgets them. Prints its port on stdout.
import { createServer } from "node:http"

const delay = Number(process.env.RECEIVER_DELAY_MS ?? "20")
let receipts = []
const ids = new Set()
const server = createServer((request, response) => {
  if (request.method === "GET" && request.url === "/receipts") {
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(receipts))
    return
  }
  if (request.method === "GET" && request.url === "/count") {
    response.writeHead(200, { "content-type": "text/plain" }).end(String(ids.size))
    return
  }
  if (request.url === "/reset") {
    receipts = []
    ids.clear()
    response.writeHead(204).end()
    return
  }
  request.resume()
  request.on("end", () => {
    const id = String(request.headers["webhook-id"] ?? "")
    receipts.push([id, Date.now()])
    ids.add(id)
    setTimeout(() => response.writeHead(200, { "content-type": "text/plain" }).end("ok"), delay)
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, "127.0.0.1", () => console.log(String(server.address().port)))
