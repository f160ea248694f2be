import { describe, expect, it } from 'vitest'
import { endedSessions, lostRights } from '../../src/domain/streamRights.js'

const NOW = Date.parse('2026-12-01T10:00:00Z')

describe('lostRights', () => {
  it('takes a token the database no longer holds for revoked', () => {
    const lost = lostRights(
      [
        [1, null],
        [2, null],
      ],
      new Map([[1, false]]),
      NOW,
    )
    expect([...lost]).toEqual([[2, 'token_revoked']])
  })

  it('takes a token for expired once its known expiry has passed, even without the database', () => {
    const holders: [number, number | null][] = [
      [1, NOW],
      [2, NOW + 1],
      [3, null],
    ]
    expect([...lostRights(holders, null, NOW)]).toEqual([[1, 'token_expired']])
  })

  it('takes a token for expired when the database says so by its own clock', () => {
    const lost = lostRights([[1, NOW + 500]], new Map([[1, true]]), NOW)
    expect([...lost]).toEqual([[1, 'token_expired']])
  })

  it('ends nothing for revocation while the database cannot be asked', () => {
    expect(lostRights([[1, null]], null, NOW).size).toBe(0)
  })
})

describe('endedSessions', () => {
  it('ends a session at its end, even without the database, and one the database dropped as signed out', () => {
    const holders: [string, number][] = [
      ['a', NOW],
      ['b', NOW + 1000],
      ['c', NOW + 1000],
    ]
    expect([...endedSessions(holders, null, NOW)]).toEqual([['a', 'session_expired']])
    expect([...endedSessions(holders, new Set(['b']), NOW)]).toEqual([
      ['a', 'session_expired'],
      ['c', 'signed_out'],
    ])
  })
})
