// The connect page (GET /connect): lists the session's platforms and connects, reconnects and
// disconnects them through the session-scoped API. Served with a Content-Security-Policy that
// allows this script by its hash only; it writes text, never markup, into the page.
(() => {
  const config = JSON.parse(document.getElementById("config").textContent)
  const list = document.getElementById("platforms")
  const notice = document.getElementById("notice")
  const done = document.getElementById("done")
  const KEY = "oauth-integrations:session"

  const fromHash = new URLSearchParams(location.hash.slice(1)).get("session")
  if (fromHash) sessionStorage.setItem(KEY, fromHash)
  const secret = fromHash || sessionStorage.getItem(KEY)
  // The secret leaves the address bar (history, screenshots, copied links).
  const returned = new URLSearchParams(location.search)
  history.replaceState(null, "", location.pathname)

  let view = null
  let last = { platform: null, status: null }

  const say = (text, kind) => {
    notice.textContent = text
    notice.dataset.kind = kind || "info"
  }

  /** The application: the window that opened the page, or the one that framed it. */
  const app = window.opener || (window.parent !== window ? window.parent : null)
  const tell = (message) => {
    if (!app) return
    // Only to the allowed origins, never "*": a foreign page that opened this one hears nothing.
    for (const origin of config.origins) {
      try {
        app.postMessage({ type: "oauth-integrations", ...message }, origin)
      } catch (_) {
        // a closed window
      }
    }
  }

  const api = async (path, init) => {
    const response = await fetch(path, {
      ...init,
      headers: { "x-connect-session": secret || "", "content-type": "application/json" },
      credentials: "omit",
      cache: "no-store"
    })
    const body = await response.json().catch(() => ({}))
    if (!response.ok) {
      const error = new Error(body.message || `the service answered ${response.status}`)
      error.body = body
      error.status = response.status
      throw error
    }
    return body
  }

  const STATES = {
    connected: "Connected",
    not_connected: "Not connected",
    needs_reauth: "Needs reconnecting",
    revoked: "Access was revoked: reconnect",
    expired: "Expired: reconnect",
    disconnected: "Not connected",
    unverified: "Being checked",
    not_configured: "Unavailable",
    unreadable: "Unavailable"
  }

  const button = (label, text, secondary, onClick) => {
    const b = document.createElement("button")
    b.type = "button"
    b.textContent = text
    b.setAttribute("aria-label", label)
    if (secondary) b.className = "secondary"
    b.addEventListener("click", onClick)
    return b
  }

  const render = () => {
    list.replaceChildren()
    for (const p of view.platforms) {
      const item = document.createElement("li")
      item.dataset.platform = p.platform
      const name = document.createElement("span")
      name.className = "name"
      name.textContent = p.display_name
      const state = document.createElement("span")
      state.className = "state"
      state.dataset.state = p.status
      const account = p.accounts.find((a) => a.connected)
      state.textContent = STATES[p.status] || p.status
      if (p.status === "connected" && account && account.account_id) state.textContent += ` (${account.account_id})`
      const actions = document.createElement("span")
      actions.className = "actions"
      const unavailable = p.status === "not_configured" || p.status === "unreadable" || !p.configured
      if (unavailable) {
        const b = button(`${p.display_name} is unavailable`, "Unavailable", true, () => {})
        b.disabled = true
        actions.append(b)
      } else if (p.status === "connected") {
        actions.append(button(`Reconnect ${p.display_name}`, "Reconnect", true, () => start(p)))
        if (view.allow_disconnect) actions.append(button(`Disconnect ${p.display_name}`, "Disconnect", true, () => disconnect(p)))
      } else {
        const again = p.status === "needs_reauth" || p.status === "revoked" || p.status === "expired"
        actions.append(button(`${again ? "Reconnect" : "Connect"} ${p.display_name}`, again ? "Reconnect" : "Connect", false, () => start(p)))
      }
      item.append(name, state, actions)
      list.append(item)
    }
  }

  const load = async () => {
    view = await api("/v1/connect/session")
    render()
  }

  const start = async (p) => {
    // Opened at once, in the click, so that no blocker takes it for an unrequested popup.
    const popup = window.open("", "oauth-integrations-connect", "popup,width=520,height=700")
    try {
      const flow = await api(`/v1/connect/session/platforms/${encodeURIComponent(p.platform)}/authorize`, {
        method: "POST",
        body: JSON.stringify({ mode: popup ? "popup" : "redirect" })
      })
      if (popup) {
        popup.location.href = flow.auth_url
        say(`Finish connecting ${p.display_name} in the window that opened.`)
      } else {
        say(`Taking you to ${p.display_name}…`)
        location.assign(flow.auth_url)
      }
    } catch (error) {
      if (popup) popup.close()
      say(error.message, "error")
    }
  }

  const disconnect = async (p) => {
    try {
      await api(`/v1/connect/session/platforms/${encodeURIComponent(p.platform)}`, { method: "DELETE" })
      last = { platform: p.platform, status: "disconnected" }
      tell({ event: "disconnected", platform: p.platform, status: "disconnected" })
      say(`${p.display_name} is disconnected.`)
      await load()
    } catch (error) {
      say(error.message, "error")
    }
  }

  /** A flow's result, from the popup's message or the redirect back here. */
  const finished = async (result) => {
    const event = result.status === "error" ? "error" : result.status === "pending" ? "pending" : "connected"
    last = { platform: result.platform, status: result.status }
    const message = { event, platform: result.platform, status: result.status, reason: result.reason || null }
    // A pending grant is the application's to confirm, for the user logged in there.
    if (result.confirmation) message.confirmation = result.confirmation
    tell(message)
    const name = (view && view.platforms.find((p) => p.platform === result.platform) || { display_name: result.platform }).display_name
    say(event === "error" ? `${name} was not connected (${result.reason || "error"}).` : event === "pending" ? `${name} is authorised.` : `${name} is connected.`, event === "error" ? "error" : "info")
    await load().catch(() => {})
    // A pending grant becomes a connection once the application has confirmed it: watch for that a minute.
    if (event === "pending") watch(result.platform, 60)
  }

  const connectedNow = (platform) => view && view.platforms.some((p) => p.platform === platform && p.status === "connected")
  const watch = (platform, tries) => {
    if (tries <= 0 || connectedNow(platform)) return
    setTimeout(() => load().then(() => {
      if (connectedNow(platform)) say(`${(view.platforms.find((p) => p.platform === platform) || {}).display_name || platform} is connected.`)
      else watch(platform, tries - 1)
    }, () => watch(platform, tries - 1)), 1000)
  }

  window.addEventListener("message", (e) => {
    if (e.origin !== location.origin || !e.data || e.data.type !== "oauth-integrations:callback") return
    finished(e.data)
  })

  done.addEventListener("click", () => {
    tell({ event: "done", platform: last.platform, status: last.status })
    if (window.opener) window.close()
    else if (view && view.return_to && !app) location.assign(view.return_to)
    else say("You can close this page.")
  })

  if (!secret) {
    say("This page needs a connect link from the application.", "error")
    done.hidden = true
    return
  }
  load().then(() => {
    if (returned.has("platform") && returned.has("status")) {
      finished({ platform: returned.get("platform"), status: returned.get("status"), reason: returned.get("reason"), confirmation: returned.get("confirmation") })
    }
  }, (error) => {
    list.replaceChildren()
    done.hidden = true
    say(error.status === 401 ? error.message : `The page could not load: ${error.message}`, "error")
  })
})()
