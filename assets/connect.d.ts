/** What the connect page tells the application: each change, then "done". */
export interface ConnectEvent {
  readonly event: "connected" | "pending" | "error" | "disconnected" | "done"
  readonly platform: string | null
  readonly status: string | null
  readonly reason?: string | null
  /** With "pending" (OAUTH_CONFIRMATION=required): the code the application's back end confirms for the user logged in. */
  readonly confirmation?: string
}

export interface OpenConnectOptions {
  /** The session's connect_url, from POST /v1/connect/sessions. */
  readonly url: string
  /** A popup (default) or a full-window iframe over the page. */
  readonly mode?: "popup" | "overlay"
  /** Every event as it comes: confirm pending grants from here. */
  readonly onEvent?: (event: ConnectEvent) => void
  readonly width?: number
  readonly height?: number
}

export declare class ConnectError extends Error {
  readonly code: "popup_blocked" | "closed"
}

/** Opens the connect page; resolves when the user is done, with the last change. */
export declare function openConnect(options: OpenConnectOptions): Promise<{ readonly event: "done"; readonly platform: string | null; readonly status: string | null }>
