import { readFileSync } from "node:fs"

export interface FencedBlock {
  /** The info string after the opening fence: `sh`, `ts`, `dotenv`, or empty. */
  readonly lang: string
  readonly body: string
}

/**
 * The section of a Markdown file under `heading` (written as in the file, `## API`): from that
 * line to the next heading of the same level or a higher one. Fails the test when there is none.
 */
export const markdownSection = (path: string, heading: string): string => {
  const lines = readFileSync(path, "utf8").split("\n")
  const level = heading.indexOf(" ")
  const start = lines.indexOf(heading)
  if (start < 0) throw new Error(`${path} has no heading "${heading}"`)
  let fenced = false
  let end = lines.length
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i] ?? ""
    if (line.startsWith("```")) fenced = !fenced
    const hashes = /^(#+) /.exec(line)?.[1]
    if (!fenced && hashes !== undefined && hashes.length <= level) {
      end = i
      break
    }
  }
  return lines.slice(start + 1, end).join("\n")
}

/** The fenced code blocks of a piece of Markdown, in order. */
export const fencedBlocks = (markdown: string): ReadonlyArray<FencedBlock> =>
  Array.from(markdown.matchAll(/^```([^\n`]*)\n([\s\S]*?)^```$/gm), (m) => ({ lang: (m[1] ?? "").trim(), body: m[2] ?? "" }))

/** The one fenced block of `markdown` in `lang` that contains `marker`; fails the test unless there is exactly one. */
export const theBlock = (markdown: string, lang: string, marker: string): string => {
  const found = fencedBlocks(markdown).filter((b) => b.lang === lang && b.body.includes(marker))
  if (found.length !== 1) throw new Error(`expected one \`\`\`${lang} block containing ${JSON.stringify(marker)}, found ${found.length}`)
  return found[0]?.body ?? ""
}
