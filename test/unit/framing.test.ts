import { describe, expect, it } from 'vitest'
import { CHUNKED_FRAMING, RAW_FRAMING } from '../../src/events/framing.js'

describe('CHUNKED_FRAMING', () => {
  it('wraps bytes in one HTTP/1.1 chunk with a hexadecimal size', () => {
    const bytes = Buffer.from('x'.repeat(300))
    expect(CHUNKED_FRAMING.frame(bytes).toString()).toBe(`12c\r\n${'x'.repeat(300)}\r\n`)
  })

  it('never turns empty bytes into the last chunk, which would end the body', () => {
    expect(CHUNKED_FRAMING.frame(Buffer.alloc(0))).toHaveLength(0)
    expect(CHUNKED_FRAMING.end?.toString()).toBe('0\r\n\r\n')
  })
})

describe('RAW_FRAMING', () => {
  it('passes bytes through and has nothing to end the body with', () => {
    const bytes = Buffer.from('data: {}\n\n')
    expect(RAW_FRAMING.frame(bytes)).toBe(bytes)
    expect(RAW_FRAMING.end).toBeUndefined()
  })
})
