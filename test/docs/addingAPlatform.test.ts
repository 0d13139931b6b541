import { existsSync, readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { fencedBlocks } from "../support/markdown.js"

const PAGE = "docs/adding-a-platform.md"
const page = readFileSync(PAGE, "utf8")
const snippets = fencedBlocks(page).filter((b) => b.lang === "ts").map((b) => b.body)
const spans = Array.from(page.matchAll(/`([^`\n]+)`/g), (m) => m[1] ?? "")

/** What the compiler reads of a piece of code: no comments, no blank space. */
const bare = (source: string) => source.replace(/(^|\s)\/\/[^\n]*/g, "$1").replace(/\s+/g, "")

const snippet = (marker: string) => {
  const found = snippets.filter((s) => s.includes(marker))
  expect(found, `one \`\`\`ts block of ${PAGE} with ${marker}`).toHaveLength(1)
  return found[0] ?? ""
}

/** The names in the array literal of `export const platforms ... = [...]`. */
const listed = (source: string) =>
  (/export const platforms[^=]*=\s*\[([^\]]*)\]/.exec(source)?.[1] ?? "").split(",").map((name) => name.trim()).filter((name) => name !== "")

describe(`${PAGE} matches the code`, () => {
  it("every file and folder it names exists, but the module the reader writes", () => {
    const paths = spans.filter((s) => /^(src|test|docs|migrations)\/[\w./-]*$/.test(s) && s !== "src/platforms/acme.ts")
    expect(paths.length).toBeGreaterThan(10)
    expect(paths.filter((p) => !existsSync(p))).toEqual([])
  })

  it("every name it places in a file is exported there", () => {
    const placed = Array.from(page.matchAll(/`([A-Za-z]\w*)(?:\.\w+(?:\([^`]*\))?)?`\s(?:\(`([\w./-]+\.ts)`\)|in\s`([\w./-]+\.ts)`)/g), (m) => ({
      name: m[1] ?? "",
      file: m[2] ?? m[3] ?? ""
    }))
    expect(placed.length).toBeGreaterThan(5)
    const missing = placed.filter(({ name, file }) =>
      !existsSync(file) || !new RegExp(`export (const|class|function|interface|type) ${name}\\b`).test(readFileSync(file, "utf8"))
    )
    expect(missing).toEqual([])
  })

  it("step 1's module, comments aside, is the one test/integrations/addingAPlatform.test.ts runs", () => {
    const documented = snippet("export const acme: PlatformDefinition")
    const run = readFileSync("test/integrations/addingAPlatform.test.ts", "utf8")
    const from = (source: string) => source.slice(source.indexOf("const Profile"))
    const definition = from(run).slice(0, from(run).indexOf("\n}\n") + 2)
    expect(definition).toContain("const acme: PlatformDefinition")
    expect(bare(from(documented).replace("export const acme", "const acme"))).toBe(bare(definition))
  })

  it("step 1's imports are the modules' own", () => {
    const imports = Array.from(snippet("export const acme: PlatformDefinition").matchAll(/from "(\.[^"]+)\.js"/g), (m) => m[1] ?? "")
    expect(imports.length).toBeGreaterThan(0)
    for (const path of imports) expect(existsSync(`src/platforms/${path}.ts`), path).toBe(true)
  })

  it("step 2's list is src/registry/platforms.ts's, with the new platform last", () => {
    const documented = listed(snippet("export const platforms"))
    expect(documented).toEqual([...listed(readFileSync("src/registry/platforms.ts", "utf8")), "acme"])
  })
})
