import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const read = (path: string) =>
  readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)), 'utf8')

describe('the entry point', () => {
  it('runs node with the same options in the image as under npm start', () => {
    // Given the start script and the image's command
    const start = (JSON.parse(read('package.json')) as { scripts: { start: string } }).scripts.start
    const cmd = /^CMD (\[.*\])$/m.exec(read('Dockerfile'))?.[1]
    // Then both run dist/main.js with the same node options (the young generation's size)
    expect(start).toMatch(/^node --max-semi-space-size=\d+ dist\/main\.js$/)
    expect(JSON.parse(cmd ?? '[]')).toEqual(start.split(' '))
  })
})
