import { Either } from "effect"

// YYYY-MM-DD, then optionally a time (with T or a space), seconds, a fraction and an offset.
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i

/**
 * A timestamp as the legacy code left it: SQLite's CURRENT_TIMESTAMP ("2025-01-15 10:30:00",
 * UTC), Python's isoformat() with or without microseconds and offset ("2025-01-15T10:30:00.123456",
 * "...+00:00"), or seconds since the epoch. Without an offset it is UTC, as SQLite writes it.
 * null for an empty value; Left for anything else, which the caller reports by row.
 */
export const parseLegacyTime = (value: unknown): Either.Either<Date | null, string> => {
  if (value === null || value === undefined || value === "") return Either.right(null)
  if (typeof value === "number" || typeof value === "bigint") {
    const seconds = Number(value)
    return Number.isFinite(seconds) && seconds > 0 ? Either.right(new Date(seconds * 1000)) : Either.left("not a time")
  }
  if (typeof value !== "string") return Either.left("not a time")
  const match = TIMESTAMP.exec(value.trim())
  if (match === null) return Either.left("not a time SQLite or Python writes")
  const [, y, mo, d, h = "00", mi = "00", s = "00", fraction = "", offset = "Z"] = match
  const zone = offset.toUpperCase() === "Z" ? "Z" : offset.length === 3 ? `${offset}:00` : offset.includes(":") ? offset : `${offset.slice(0, 3)}:${offset.slice(3)}`
  const millis = fraction === "" ? "" : `.${fraction.padEnd(3, "0").slice(0, 3)}`
  const date = new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}${millis}${zone}`)
  // Date accepts 2025-02-30 as March 2nd: a date that does not read back as written is refused.
  if (Number.isNaN(date.getTime())) return Either.left("not a valid time")
  const utc = new Date(`${y}-${mo}-${d}T00:00:00Z`)
  if (utc.getUTCMonth() + 1 !== Number(mo) || utc.getUTCDate() !== Number(d)) return Either.left("not a valid date")
  return Either.right(date)
}
