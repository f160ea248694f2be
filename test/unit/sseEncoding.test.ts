import { describe, expect, it } from 'vitest'
import { encodeEvent, encodeRetry, parseLastEventId } from '../../src/events/sseEncoding.js'

describe('encodeEvent', () => {
  it('writes id, event and one data line, ended by a blank line', () => {
    expect(
      encodeEvent({ id: 7, type: 'item.created', data: { part_number: 'P-1' } }).toString(),
    ).toBe('id: 7\nevent: item.created\ndata: {"part_number":"P-1"}\n\n')
  })

  it('omits id for events that are not stored', () => {
    expect(encodeEvent({ type: 'heartbeat', data: {} }).toString()).toBe(
      'event: heartbeat\ndata: {}\n\n',
    )
  })

  it('keeps newlines in values inside the single data line so they cannot inject fields', () => {
    const wire = encodeEvent({
      id: 1,
      type: 'item.updated',
      data: { description: 'a\n\nid: 99\r\nevent: x' },
    }).toString()
    expect(wire.split('\n')).toHaveLength(5)
    expect(wire).toContain('data: {"description":"a\\n\\nid: 99\\r\\nevent: x"}\n\n')
  })
})

describe('encodeRetry', () => {
  it('writes a whole number of milliseconds', () => {
    expect(encodeRetry(2500.7).toString()).toBe('retry: 2500\n\n')
  })
})

describe('parseLastEventId', () => {
  it.each([
    ['42', 42],
    [' 42 ', 42],
    ['0', 0],
  ])('reads %j as %j', (input, expected) => {
    expect(parseLastEventId(input)).toBe(expected)
  })

  it.each([undefined, '', 'abc', '-1', '1.5', '1e3', '99999999999999999', ['1']])(
    'treats %j as absent',
    (input) => {
      expect(parseLastEventId(input)).toBeUndefined()
    },
  )
})
