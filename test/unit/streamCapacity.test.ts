import { describe, expect, it } from 'vitest'
import { capacityFor, parseSoftFileLimit } from '../../src/events/streamCapacity.js'

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            20000                40000                files
Max locked memory         8388608              8388608              bytes
`

describe('stream capacity', () => {
  it('reads the soft open-files limit from /proc/<pid>/limits', () => {
    expect(parseSoftFileLimit(LIMITS)).toBe(20000)
    expect(parseSoftFileLimit('Max cpu time unlimited unlimited seconds\n')).toBeNull()
  })

  it('keeps max(256, 10 %) of the file limit from streams, and max(128, 5 %) from connections', () => {
    expect(capacityFor(20000)).toEqual({ maxStreams: 18000, maxConnections: 19000 })
    expect(capacityFor(1024)).toEqual({ maxStreams: 768, maxConnections: 896 })
  })

  it('leaves connections for the API and probes between the stream cap and the connection cap', () => {
    for (const limit of [512, 1024, 4096, 20000, 1048576]) {
      const { maxStreams, maxConnections } = capacityFor(limit)
      expect(maxConnections - maxStreams).toBeGreaterThanOrEqual(128)
      expect(maxConnections).toBeLessThan(limit)
    }
  })

  it('still allows one stream under a tiny limit', () => {
    expect(capacityFor(100).maxStreams).toBe(1)
  })
})
