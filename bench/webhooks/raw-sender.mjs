// The baseline of bench:webhooks: a plain Node.js loop that reads the pending deliveries once and
// posts each signed body (Standard Webhooks headers, HMAC-SHA256 as the service signs) with
// BENCH_CONCURRENCY requests in flight over an undici Agent, writing nothing back. It waits for a
// line on stdin before reading, and exits when every delivery got its answer.
import { createHmac } from "node:crypto"
import { createInterface } from "node:readline"
import pg from "pg"
import { Agent, request } from "undici"

const concurrency = Number(process.env.BENCH_CONCURRENCY ?? "16")
const url = new URL(process.env.WEBHOOK_URL)
const secret = Buffer.from(process.env.WEBHOOK_SECRETS.slice("whsec_".length), "base64")
const agent = new Agent({ connections: concurrency })
const client = new pg.Client({ connectionString: process.env.DATABASE_URL })
await client.connect()
console.log("ready")
const lines = createInterface({ input: process.stdin })
await new Promise((resolve) => lines.once("line", resolve))
lines.close()
const { rows } = await client.query("select message_id, body from webhook_deliveries where status = 'pending' order by id")
let next = 0
const worker = async () => {
  while (next < rows.length) {
    const row = rows[next++]
    const timestamp = String(Math.floor(Date.now() / 1000))
    const signature = createHmac("sha256", secret).update(`${row.message_id}.${timestamp}.${row.body}`).digest("base64")
    const response = await request(url, {
      method: "POST",
      dispatcher: agent,
      body: row.body,
      headers: {
        "webhook-id": row.message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": `v1,${signature}`,
        "content-type": "application/json"
      }
    })
    await response.body.dump()
    if (response.statusCode !== 200) throw new Error(`answered ${response.statusCode}`)
  }
}
await Promise.all(Array.from({ length: concurrency }, worker))
await client.end()
await agent.close()
console.log(`done ${rows.length}`)
process.exit(0)
