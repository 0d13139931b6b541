import type { Option, Redacted } from "effect"
import type { Connection, ConnectionIdentity, HeldTokens, IssuedTokens } from "../domain/Connection.js"
import type { OutcomeEvent } from "./EventRepository.js"

/** A grant to store as the connection of (user, platform, account), new or again. */
export interface NewConnection extends ConnectionIdentity {
  readonly tokens: IssuedTokens
  readonly providerData: Record<string, unknown>
}

/** The outcome of a refresh to store; a refresh token only when the platform rotated it. */
export interface RefreshedTokens extends IssuedTokens {
  /** The refresh token that was presented, re-sealed when the row's key is not the current one. */
  readonly previousRefreshToken: Option.Option<Redacted.Redacted<string>>
}

/** A refresh's result to store with its outcome. */
export interface RefreshToStore {
  readonly connection: Connection
  readonly tokens: RefreshedTokens
  readonly outcome: Outcome
}

/**
 * How an outcome is written: only while `owner` holds the row's lease and the row is active
 * (a connection disconnected, revoked or taken over meanwhile is left alone), together with
 * its events, in one statement.
 */
export interface Outcome {
  readonly owner: string
  readonly events: ReadonlyArray<OutcomeEvent>
  readonly now: Date
}

/** An imported connection to write, decided (see integrations/imports.ts) but not yet sealed. */
export interface ImportToWrite extends ConnectionIdentity {
  /** Whether it replaces a row read under lock; else it is new, and written only if no row appeared meanwhile. */
  readonly replaces: boolean
  readonly status: "active" | "needs_reauth"
  readonly tokens: HeldTokens
  readonly tokenType: string | null
  readonly scope: string | null
  readonly expiresAt: Date | null
  readonly providerData: Readonly<Record<string, unknown>>
  readonly unverified: boolean
  readonly updatedAt: Date
  readonly detail: Readonly<Record<string, unknown>>
}
