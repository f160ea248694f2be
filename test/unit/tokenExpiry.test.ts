import { describe, expect, it } from 'vitest'
import { tokenExpiry } from '../../src/domain/tokens.js'

const NOW = Date.parse('2026-12-01T10:00:00Z')

describe('tokenExpiry', () => {
  it('never expires without expires_in or expires_at', () => {
    expect(tokenExpiry({}, NOW)).toBeNull()
  })

  it('reads expires_in as a duration like the config (30d, 12h, 3600s)', () => {
    expect(tokenExpiry({ expires_in: '30d' }, NOW)?.toISOString()).toBe('2026-12-31T10:00:00.000Z')
    expect(tokenExpiry({ expires_in: '90s' }, NOW)?.getTime()).toBe(NOW + 90_000)
  })

  it('takes expires_at as the moment itself', () => {
    const at = '2027-01-01T00:00:00+01:00'
    expect(tokenExpiry({ expires_at: at }, NOW)?.getTime()).toBe(Date.parse(at))
  })

  it.each([
    [{ expires_in: '1h', expires_at: '2027-01-01T00:00:00Z' }, /not both/],
    [{ expires_in: '30' }, /expires_in must be a duration/],
    [{ expires_in: 'soon' }, /expires_in must be a duration/],
    [{ expires_in: '0s' }, /expires_in must lie in the future/],
    [{ expires_in: '99999999999999999999d' }, /expires_in must lie within/],
    [{ expires_at: '2026-12-01T09:59:59Z' }, /expires_at must lie in the future/],
    [{ expires_at: '3026-12-01T00:00:00Z' }, /expires_at must lie within/],
  ])('refuses %j with a 400 naming the field', (request, message) => {
    expect(() => tokenExpiry(request, NOW)).toThrow(message)
    try {
      tokenExpiry(request, NOW)
    } catch (err) {
      expect(err).toMatchObject({ status: 400, code: 'bad_request' })
    }
  })
})
