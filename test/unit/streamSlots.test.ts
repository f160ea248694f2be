import { describe, expect, it } from 'vitest'
import { type StreamSlot, StreamSlots } from '../../src/events/streamSlots.js'

function taken(slot: StreamSlot | string): StreamSlot {
  if (typeof slot === 'string') throw new Error(`refused: ${slot}`)
  return slot
}

describe('StreamSlots', () => {
  it('refuses an owner past its own cap while others still get slots', () => {
    const slots = new StreamSlots<string, null>({ perOwner: 2, total: 10 })
    taken(slots.acquire('a', null))
    taken(slots.acquire('a', null))
    expect(slots.acquire('a', null)).toBe('max_streams_per_token')
    taken(slots.acquire('b', null))
    expect(slots.inUse).toBe(3)
  })

  it('refuses everyone once the total is taken, whoever holds it', () => {
    const slots = new StreamSlots<string, null>({ perOwner: 5, total: 3 })
    for (const owner of ['a', 'a', 'b']) taken(slots.acquire(owner, null))
    expect(slots.acquire('c', null)).toBe('max_streams')
    expect(slots.acquire('a', null)).toBe('max_streams')
  })

  it('names the per-owner cap first when both are reached', () => {
    const slots = new StreamSlots<string, null>({ perOwner: 1, total: 1 })
    taken(slots.acquire('a', null))
    expect(slots.acquire('a', null)).toBe('max_streams_per_token')
  })

  it('gives a released slot out again, and counts a second release of it once', () => {
    const slots = new StreamSlots<string, null>({ perOwner: 1, total: 2 })
    const first = taken(slots.acquire('a', null))
    taken(slots.acquire('b', null))
    first.release()
    first.release()
    expect(slots.inUse).toBe(1)
    taken(slots.acquire('a', null))
    expect(slots.acquire('c', null)).toBe('max_streams')
  })

  it('lists each holder once with the info of its first slot, and forgets one that holds none', () => {
    const slots = new StreamSlots<number, string>({ perOwner: 5, total: 5 })
    const a1 = taken(slots.acquire(1, 'first'))
    const a2 = taken(slots.acquire(1, 'second'))
    taken(slots.acquire(2, 'other'))
    expect([...slots.holders()]).toEqual([
      [1, 'first'],
      [2, 'other'],
    ])
    a1.release()
    a2.release()
    expect([...slots.holders()]).toEqual([[2, 'other']])
  })
})
