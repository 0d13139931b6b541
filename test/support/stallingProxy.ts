import { createConnection, createServer, type Socket } from "node:net"
import { Effect } from "effect"

export interface StallingProxy {
  /** `url` with its host and port replaced by the proxy's. */
  readonly url: string
  /**
   * Stops forwarding in both directions, as a stopped server or a silent network would:
   * sockets stay open, new connections are accepted, and what arrives is held, in order.
   */
  readonly freeze: Effect.Effect<void>
  /** Forwards what was held, and everything after it. */
  readonly thaw: Effect.Effect<void>
}

/** One direction of one connection: bytes (and the end of the stream) held while frozen. */
interface Direction {
  readonly to: Socket
  readonly held: Array<Buffer | "end">
}

/**
 * A TCP proxy on 127.0.0.1 in front of the PostgreSQL server of `url`, closed with the scope:
 * the fault sits between a service and the database, and the shared server is not touched.
 */
export const stallingProxy = (url: string) =>
  Effect.acquireRelease(
    Effect.async<{ readonly proxy: StallingProxy; readonly close: () => void }>((resume) => {
      const target = new URL(url)
      const sockets = new Set<Socket>()
      const directions = new Set<Direction>()
      let frozen = false

      const send = (direction: Direction, item: Buffer | "end") => {
        if (item === "end") {
          direction.to.end()
          directions.delete(direction)
        } else direction.to.write(item)
      }
      const forward = (from: Socket, to: Socket) => {
        const direction: Direction = { to, held: [] }
        directions.add(direction)
        let ended = false
        const pass = (item: Buffer | "end") => {
          if (ended) return
          ended = item === "end"
          if (frozen || direction.held.length > 0) direction.held.push(item)
          else send(direction, item)
        }
        from.on("data", (chunk: Buffer) => pass(chunk))
        // A side that closes without ending (destroyed) ends the other side too, in turn.
        from.on("end", () => pass("end"))
        from.on("close", () => pass("end"))
      }

      const server = createServer({ allowHalfOpen: true }, (client) => {
        const upstream = createConnection({ host: target.hostname, port: Number(target.port || 5432), allowHalfOpen: true })
        for (const socket of [client, upstream]) {
          sockets.add(socket)
          socket.on("error", () => {
            client.destroy()
            upstream.destroy()
          })
          socket.on("close", () => sockets.delete(socket))
        }
        forward(client, upstream)
        forward(upstream, client)
      })

      const through = (port: number) => {
        const proxied = new URL(url)
        proxied.hostname = "127.0.0.1"
        proxied.port = String(port)
        return proxied.toString()
      }
      const proxyAt = (port: number): StallingProxy => ({
        url: through(port),
        freeze: Effect.sync(() => {
          frozen = true
        }),
        thaw: Effect.sync(() => {
          frozen = false
          for (const direction of directions) {
            for (const item of direction.held.splice(0)) send(direction, item)
          }
        })
      })
      const close = () => {
        server.close()
        for (const socket of sockets) socket.destroy()
      }
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({ proxy: proxyAt(port), close }))
      })
    }),
    ({ close }) => Effect.sync(close)
  ).pipe(Effect.map(({ proxy }) => proxy))
