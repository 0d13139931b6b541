import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { parseLegacyTime } from "../../src/backfill/legacyTime.js"

const iso = (value: unknown) => Either.map(parseLegacyTime(value), (d) => d?.toISOString() ?? null)

describe("legacy timestamps", () => {
  it("reads what SQLite and Python wrote, UTC without an offset", () => {
    expect(iso("2025-01-15 10:30:00")).toEqual(Either.right("2025-01-15T10:30:00.000Z"))
    expect(iso("2025-01-15T10:30:00")).toEqual(Either.right("2025-01-15T10:30:00.000Z"))
    expect(iso("2025-01-15 10:30:00.123456")).toEqual(Either.right("2025-01-15T10:30:00.123Z"))
    expect(iso("2025-01-15T10:30:00.5+02:00")).toEqual(Either.right("2025-01-15T08:30:00.500Z"))
    expect(iso("2025-01-15T10:30:00-0500")).toEqual(Either.right("2025-01-15T15:30:00.000Z"))
    expect(iso("2025-01-15T10:30:00Z")).toEqual(Either.right("2025-01-15T10:30:00.000Z"))
    expect(iso("2025-01-15 10:30")).toEqual(Either.right("2025-01-15T10:30:00.000Z"))
    expect(iso("2025-01-15")).toEqual(Either.right("2025-01-15T00:00:00.000Z"))
    expect(iso(1_736_937_000)).toEqual(Either.right("2025-01-15T10:30:00.000Z"))
  })

  it("an empty value is no time; anything else unreadable is a problem, never a silent null", () => {
    expect(iso(null)).toEqual(Either.right(null))
    expect(iso("")).toEqual(Either.right(null))
    for (const bad of ["next tuesday", "15/01/2025 10:30", "2025-02-30 10:00:00", "2025-01-15 25:00:00", "2025-13-01", -5, { at: 1 }]) {
      expect(Either.isLeft(parseLegacyTime(bad)), String(bad)).toBe(true)
    }
  })
})
