import type { ByteRange } from '../storage/objectStorage.js'

/**
 * Reads a `Range` header for a representation of `size` bytes (RFC 9110 §14). Returns the one
 * range to serve, `'unsatisfiable'` for 416, or null to serve the whole body: no header, a
 * syntax error, or several ranges (a server may ignore those, and a multipart/byteranges answer
 * is not worth its complexity for CAD files).
 */
export function parseByteRange(
  header: string | undefined,
  size: number,
): ByteRange | 'unsatisfiable' | null {
  if (!header) return null
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!match) return null
  const [, first = '', last = ''] = match
  if (first === '' && last === '') return null
  if (first === '') {
    // A suffix: the last N bytes.
    const length = Number(last)
    if (length === 0 || size === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - length), end: size - 1 }
  }
  const start = Number(first)
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1)
  if (last !== '' && Number(last) < start) return null
  if (start >= size) return 'unsatisfiable'
  return { start, end }
}
