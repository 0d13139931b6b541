import { Effect, Either, Option, type Redacted } from "effect"
import { connectionContext, type Sealed, type TokenCipher } from "../crypto/TokenCipher.js"
import type { Connection, ConnectionIdentity, HeldTokens, TokenSet } from "../domain/Connection.js"
import { ConnectionUnreadable } from "../domain/errors.js"
import type { ImportRow, RefreshRow, SealedTokens } from "./connectionRows.js"
import type { ImportToWrite, RefreshToStore } from "./connectionWrites.js"

type Field = "access_token" | "refresh_token"

const buffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/**
 * How a connection's tokens are kept: each sealed under the current key, bound by its
 * associated data to the connection's (user, platform, account) and to its field; one key id
 * per row, so a token kept beside a new one is re-sealed when its key is not the current one.
 */
export const connectionSealing = (cipher: TokenCipher) => {
  const seal = (identity: ConnectionIdentity, field: Field, token: Redacted.Redacted<string>): Effect.Effect<Sealed> =>
    cipher.seal(token, connectionContext(identity, field))

  /**
   * The refresh token to store beside a new access token: the rotated one when given;
   * otherwise the stored one (`stored`, read only then), re-sealed under the current key if
   * it was sealed under another.
   */
  const refreshTokenToKeep = <E, R>(
    identity: ConnectionIdentity,
    given: Option.Option<Redacted.Redacted<string>>,
    stored: Effect.Effect<Option.Option<SealedTokens>, E, R>
  ): Effect.Effect<Uint8Array | null, E, R> =>
    Effect.gen(function*() {
      if (Option.isSome(given)) return yield* Effect.map(seal(identity, "refresh_token", given.value), (s) => s.bytes)
      const row = Option.getOrUndefined(yield* stored)
      if (row === undefined || row.refreshToken === null || row.keyId === null) return null
      if (row.keyId === cipher.currentKeyId) return row.refreshToken
      const context = connectionContext(identity, "refresh_token")
      return yield* cipher.open({ keyId: row.keyId, bytes: row.refreshToken }, context).pipe(
        Effect.flatMap((plain) => cipher.seal(plain, context)),
        Effect.map((s) => s.bytes),
        // An unreadable old refresh token is dropped rather than kept unreadable beside a readable access token.
        Effect.orElseSucceed(() => null)
      )
    })

  /**
   * A refresh's result as the store statement takes it. The refresh token stored is the
   * rotated one; else the kept one, as it is when sealed under the current key, otherwise the
   * presented one re-sealed.
   */
  const refreshRow = ({ connection, outcome, tokens }: RefreshToStore): RefreshRow => {
    const access = cipher.unsafeSeal(tokens.accessToken, connectionContext(connection, "access_token"))
    const sameKey = connection.keyId === access.keyId
    const toSeal = Option.isSome(tokens.refreshToken) || sameKey ? tokens.refreshToken : tokens.previousRefreshToken
    const refresh = Option.isSome(toSeal) ? cipher.unsafeSeal(toSeal.value, connectionContext(connection, "refresh_token")) : undefined
    return {
      id: connection.id,
      owner: outcome.owner,
      access: buffer(access.bytes),
      keyId: access.keyId,
      refresh: refresh === undefined ? null : buffer(refresh.bytes),
      // Never keep a ciphertext beside a key id that cannot open it.
      mode: refresh !== undefined ? "set" : sameKey ? "keep" : "drop",
      tokenType: tokens.tokenType,
      scope: tokens.scope,
      expiresAt: tokens.expiresAt,
      at: outcome.now,
      events: JSON.stringify(outcome.events)
    }
  }

  const unreadable = (connection: Connection, reason: string) => new ConnectionUnreadable({ platform: connection.platform, reason })
  const openField = (connection: Connection, keyId: string, field: Field, bytes: Uint8Array) =>
    Either.mapLeft(cipher.unsafeOpen({ keyId, bytes }, connectionContext(connection, field)), (e) => unreadable(connection, e.message))

  /**
   * The refresh token alone (what a refresh needs), from ciphertexts read with the row. An
   * imported refresh token may be stored without an access token: the refresh gives one.
   */
  const openRefreshToken = (connection: Connection, row: SealedTokens): Either.Either<Option.Option<Redacted.Redacted<string>>, ConnectionUnreadable> => {
    if (row.keyId === null || (row.accessToken === null && row.refreshToken === null)) return Either.left(unreadable(connection, "no stored token"))
    return row.refreshToken === null
      ? Either.right(Option.none())
      : Either.map(openField(connection, row.keyId, "refresh_token", row.refreshToken), Option.some)
  }

  /** Decrypts ciphertexts read with the row (the monitor's claim returns them). */
  const openTokens = (connection: Connection, row: SealedTokens | undefined): Effect.Effect<TokenSet, ConnectionUnreadable> =>
    Effect.suspend(() =>
      row === undefined || row.accessToken === null || row.keyId === null
        ? Either.left(unreadable(connection, "no stored token"))
        : Either.all({
          accessToken: openField(connection, row.keyId, "access_token", row.accessToken),
          refreshToken: openRefreshToken(connection, row)
        })
    )

  /** Whatever tokens the row holds, each opened: an import compares them with the ones it brings. */
  const openStored = (
    connection: Connection,
    row: SealedTokens
  ): Either.Either<HeldTokens, ConnectionUnreadable> => {
    const field = (name: Field, bytes: Uint8Array | null) =>
      bytes === null ? Either.right(Option.none()) : row.keyId === null
        ? Either.left(unreadable(connection, "no key id"))
        : Either.map(openField(connection, row.keyId, name, bytes), Option.some)
    return Either.all({ accessToken: field("access_token", row.accessToken), refreshToken: field("refresh_token", row.refreshToken) })
  }

  /** An import as the import statement takes it: its tokens sealed under the current key. */
  const importRow = (item: ImportToWrite): ImportRow => {
    const sealed = (field: Field, token: Option.Option<Redacted.Redacted<string>>) =>
      Option.match(token, { onNone: () => null, onSome: (t) => buffer(cipher.unsafeSeal(t, connectionContext(item, field)).bytes) })
    return {
      replaces: item.replaces,
      userId: item.userId,
      platform: item.platform,
      accountId: item.accountId,
      status: item.status,
      access: sealed("access_token", item.tokens.accessToken),
      refresh: sealed("refresh_token", item.tokens.refreshToken),
      keyId: cipher.currentKeyId,
      tokenType: item.tokenType,
      scope: item.scope,
      expiresAt: item.expiresAt,
      providerData: JSON.stringify(item.providerData),
      unverified: item.unverified,
      updatedAt: item.updatedAt,
      detail: JSON.stringify(item.detail)
    }
  }

  return { seal, refreshTokenToKeep, refreshRow, openRefreshToken, openTokens, openStored, importRow } as const
}
