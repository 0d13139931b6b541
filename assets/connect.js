// openConnect: opens the service's connect page for a session made by the application's back
// end (POST /v1/connect/sessions) and resolves when the user is done. Import it from the
// service (`<service>/connect.js`) or from the package (`oauth-integrations/connect`).

/** Raised when the page cannot be shown or is left before the user is done. */
export class ConnectError extends Error {
  constructor(code, message) {
    super(message)
    this.name = "ConnectError"
    this.code = code
  }
}

/**
 * @param {{ url: string, mode?: "popup" | "overlay", onEvent?: (event: object) => void, width?: number, height?: number }} options
 */
export function openConnect(options) {
  const url = new URL(options.url, window.location.href)
  const origin = url.origin
  const mode = options.mode || "popup"
  return new Promise((resolve, reject) => {
    let target = null
    let frame = null
    let timer = null
    let last = { event: "done", platform: null, status: null }
    const cleanup = () => {
      window.removeEventListener("message", onMessage)
      if (timer) clearInterval(timer)
      if (frame) frame.remove()
    }
    const onMessage = (e) => {
      if (e.origin !== origin || e.source !== target || !e.data || e.data.type !== "oauth-integrations") return
      const { type: _, ...event } = e.data
      if (options.onEvent) options.onEvent(event)
      if (event.event !== "done") {
        if (event.platform) last = { event: event.event, platform: event.platform, status: event.status }
        return
      }
      cleanup()
      resolve({ event: "done", platform: event.platform ?? last.platform, status: event.status ?? last.status })
    }
    window.addEventListener("message", onMessage)
    if (mode === "overlay") {
      frame = document.createElement("iframe")
      frame.src = url.toString()
      frame.title = "Connect your accounts"
      frame.setAttribute("style", "position:fixed;inset:0;width:100%;height:100%;border:0;z-index:2147483647;background:#fff")
      document.body.append(frame)
      target = frame.contentWindow
      return
    }
    const width = options.width || 560
    const height = options.height || 720
    target = window.open(url.toString(), "oauth-integrations", `popup,width=${width},height=${height}`)
    if (!target) {
      cleanup()
      reject(new ConnectError("popup_blocked", "The browser blocked the connect window: call openConnect from a click, or use mode: \"overlay\""))
      return
    }
    timer = setInterval(() => {
      if (target.closed) {
        cleanup()
        reject(new ConnectError("closed", "The connect window was closed before the user was done"))
      }
    }, 300)
  })
}
