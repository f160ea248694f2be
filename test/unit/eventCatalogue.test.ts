import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { EVENT_TYPES, eventCatalogue, STORED_EVENT_TYPES } from '../../src/events/catalogue.js'

/** The rows of the README's event table: type -> its data cell and its `id:` cell. */
function readmeEventTable(): Map<string, { data: string; id: string }> {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const start = readme.indexOf('| type ')
  const lines = readme.slice(start).split('\n')
  const rows = new Map<string, { data: string; id: string }>()
  for (const line of lines.slice(2)) {
    if (!line.startsWith('|')) break
    const [type = '', data = '', id = ''] = line
      .split('|')
      .slice(1, -1)
      .map((cell) => cell.trim())
    rows.set(type.replace(/`/g, ''), { data, id })
  }
  return rows
}

describe("the README's event table", () => {
  const table = readmeEventTable()

  it('lists exactly the types of the event catalogue', () => {
    expect([...table.keys()].sort()).toEqual([...EVENT_TYPES].sort())
  })

  it('marks the stored types, and only those and stream.reset, as sent with an id', () => {
    for (const type of EVENT_TYPES) {
      const withId = table.get(type)?.id.startsWith('yes')
      expect(withId, type).toBe(eventCatalogue[type].stored || type === 'stream.reset')
    }
    expect(STORED_EVENT_TYPES).not.toContain('stream.reset')
  })

  it("names every field of each type's payload schema", () => {
    for (const type of EVENT_TYPES) {
      const cell = table.get(type)?.data ?? ''
      const named = new Set(cell.match(/[a-z_]+/g))
      const fields = Object.keys(eventCatalogue[type].data.properties as Record<string, unknown>)
      expect(
        fields.filter((field) => !named.has(field)),
        `${type} fields missing from the README`,
      ).toEqual([])
    }
  })
})
