import type { ImportOutcome } from "../integrations/importPolicy.js"

/** What the backfill did with one platform's legacy rows. */
export interface PlatformTally {
  found: number
  imported: number
  updated: number
  unchanged: number
  superseded: number
  skipped: Map<string, number>
  failed: number
}

export const emptyTally = (): PlatformTally => ({ found: 0, imported: 0, updated: 0, unchanged: 0, superseded: 0, skipped: new Map(), failed: 0 })

export const skip = (tally: PlatformTally, reason: string, n = 1) => {
  tally.skipped.set(reason, (tally.skipped.get(reason) ?? 0) + n)
}

/** An import's outcome, counted: a connection that changed since the legacy row was written is kept, and said so. */
export const countOutcome = (tally: PlatformTally, outcome: ImportOutcome | "superseded") => {
  switch (outcome) {
    case "created":
      tally.imported++
      return
    case "updated":
      tally.updated++
      return
    case "unchanged":
      tally.unchanged++
      return
    case "superseded":
      tally.superseded++
      return
    case "stale":
      skip(tally, "older than stored")
  }
}

const cell = (n: number) => String(n)

/** The summary table, one row per platform, as Markdown (readable in a terminal, pasteable in a ticket). */
export const summaryTable = (tallies: ReadonlyMap<string, PlatformTally>, dryRun: boolean): string => {
  const header = dryRun
    ? "| platform | found | would import | would update | unchanged | superseded | skipped | failed |"
    : "| platform | found | imported | updated | unchanged | superseded | skipped | failed |"
  const lines = [header, "|---|---:|---:|---:|---:|---:|---|---:|"]
  for (const [platform, t] of tallies) {
    const skipped = t.skipped.size === 0 ? "0" : [...t.skipped].map(([reason, n]) => `${n} ${reason}`).join(", ")
    lines.push(`| ${platform} | ${cell(t.found)} | ${cell(t.imported)} | ${cell(t.updated)} | ${cell(t.unchanged)} | ${cell(t.superseded)} | ${skipped} | ${cell(t.failed)} |`)
  }
  return lines.join("\n")
}

/** What --verify found of one platform's imported connections. */
export interface VerifyTally {
  alive: number
  needsReauth: number
  unavailable: number
  failed: Map<string, number>
}

export const emptyVerifyTally = (): VerifyTally => ({ alive: 0, needsReauth: 0, unavailable: 0, failed: new Map() })

export const verifyTable = (tallies: ReadonlyMap<string, VerifyTally>): string => {
  const lines = ["| platform | alive | needs re-authorisation | platform unavailable (retry later) | failed |", "|---|---:|---:|---:|---|"]
  for (const [platform, t] of tallies) {
    const failed = t.failed.size === 0 ? "0" : [...t.failed].map(([reason, n]) => `${n} ${reason}`).join(", ")
    lines.push(`| ${platform} | ${t.alive} | ${t.needsReauth} | ${t.unavailable} | ${failed} |`)
  }
  return lines.join("\n")
}
