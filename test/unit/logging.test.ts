import { describe, expect, it } from 'vitest'
import { loggedUrl, scrubSecrets } from '../../src/logging.js'

const SECRET = `silo_${'a1B2-c3_D4'.repeat(4)}xyz`

describe('loggedUrl', () => {
  it('keeps the path and plain parameter names, never a value', () => {
    expect(loggedUrl('/api/items?q=bolt&limit=5')).toBe('/api/items?q=[REDACTED]&limit=[REDACTED]')
    expect(loggedUrl('/api/items')).toBe('/api/items')
    expect(loggedUrl('/api/items?')).toBe('/api/items')
  })

  it('replaces names that are not plain words, since a secret may sit in one', () => {
    for (const query of [`token[]=${SECRET}`, `;token=${SECRET}`, `t%00oken=${SECRET}`, SECRET]) {
      const logged = loggedUrl(`/api/events?${query}`)
      expect(logged).not.toContain(SECRET.slice(5))
      expect(logged).toBe('/api/events?[name]=[REDACTED]')
    }
  })
})

describe('scrubSecrets', () => {
  it('removes anything shaped like a token from a line, and leaves other text alone', () => {
    expect(scrubSecrets(`{"msg":"bad ${SECRET} here"}`)).toBe('{"msg":"bad silo_[REDACTED] here"}')
    expect(scrubSecrets('{"msg":"silo_sse_clients is 3"}')).toBe('{"msg":"silo_sse_clients is 3"}')
  })
})
