import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

/**
 * The project documents its own contracts (README and docs/): a comment that cites a README
 * section by name (`README "Probes"`, `the README's "Bad input"`) must name a heading that
 * exists, and none cites a document outside the repository.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const README = readFileSync(join(ROOT, 'README.md'), 'utf8')
const HEADINGS = [...README.matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1] as string)

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sources(path)
    return /\.(ts|tsx|mjs)$/.test(name) ? [path] : []
  })
}

const FILES = ['src', 'test', 'bench', 'web'].flatMap((dir) => sources(join(ROOT, dir)))

describe('citations of the documentation in the code', () => {
  it('name README sections that exist', () => {
    const broken: string[] = []
    let cited = 0
    for (const file of FILES) {
      // A citation may run across comment lines.
      const text = readFileSync(file, 'utf8').replace(/\n\s*(?:\*|\/\/)\s*/g, ' ')
      for (const match of text.matchAll(/README(?:'s)? "([^"$]+)"/g)) {
        cited++
        const section = match[1] as string
        if (!HEADINGS.some((h) => h === section || h.startsWith(`${section}:`))) {
          broken.push(`${file.slice(ROOT.length)}: README "${section}"`)
        }
      }
    }
    expect(cited).toBeGreaterThan(10)
    expect(broken).toEqual([])
  })

  it('never cite the design brief, which is not in the repository', () => {
    const citing = FILES.filter((file) => /DESIGN(\.md)? ?§/.test(readFileSync(file, 'utf8')))
    expect(citing.map((f) => f.slice(ROOT.length))).toEqual([])
  })
})
