import { describe, expect, it } from 'vitest'
import { parseByteRange } from '../../src/routes/byteRange.js'

describe('parseByteRange', () => {
  it('serves the whole body without a usable header', () => {
    expect(parseByteRange(undefined, 100)).toBeNull()
    expect(parseByteRange('', 100)).toBeNull()
    expect(parseByteRange('bytes=-', 100)).toBeNull()
    expect(parseByteRange('items=0-5', 100)).toBeNull()
    expect(parseByteRange('bytes=0-5,10-20', 100)).toBeNull()
    expect(parseByteRange('bytes=9-3', 100)).toBeNull()
  })

  it('reads closed, open-ended and suffix ranges', () => {
    expect(parseByteRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 })
    expect(parseByteRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 })
    expect(parseByteRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 })
  })

  it('clamps ranges that run past the end', () => {
    expect(parseByteRange('bytes=95-200', 100)).toEqual({ start: 95, end: 99 })
    expect(parseByteRange('bytes=-500', 100)).toEqual({ start: 0, end: 99 })
  })

  it('reports ranges that start past the end as unsatisfiable', () => {
    expect(parseByteRange('bytes=100-', 100)).toBe('unsatisfiable')
    expect(parseByteRange('bytes=-0', 100)).toBe('unsatisfiable')
    expect(parseByteRange('bytes=0-', 0)).toBe('unsatisfiable')
  })
})
