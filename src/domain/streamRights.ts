import type { EventData } from '../events/catalogue.js'

/** Why a stream was ended by the server with `stream.closed` (see the README's event table). */
export type StreamClosedReason = EventData<'stream.closed'>['reason']

export { streamClosed } from '../events/catalogue.js'

/**
 * Which of the tokens holding open streams have lost the right to them, and why. `holders` maps
 * a token id to its expiry as read when it authenticated (ms since the epoch, or null). `stored`
 * is what the database says of those tokens now (id -> expired by the database's clock; a
 * missing id was revoked), or null when it could not be asked: then only the expiries known
 * here count, and no token is taken for revoked because the database did not answer.
 */
export function lostRights(
  holders: Iterable<readonly [number, number | null]>,
  stored: ReadonlyMap<number, boolean> | null,
  now: number,
): Map<number, StreamClosedReason> {
  const lost = new Map<number, StreamClosedReason>()
  for (const [tokenId, expiresAt] of holders) {
    if ((expiresAt !== null && expiresAt <= now) || stored?.get(tokenId) === true) {
      lost.set(tokenId, 'token_expired')
    } else if (stored && !stored.has(tokenId)) {
      lost.set(tokenId, 'token_revoked')
    }
  }
  return lost
}

/**
 * Which of the browser sessions holding open streams have ended, and why. `holders` maps a
 * session to its end (ms since the epoch); `live` is the set of those the database still holds
 * (signing out elsewhere deletes one), or null when it could not be asked.
 */
export function endedSessions(
  holders: Iterable<readonly [string, number]>,
  live: ReadonlySet<string> | null,
  now: number,
): Map<string, StreamClosedReason> {
  const ended = new Map<string, StreamClosedReason>()
  for (const [sessionId, expiresAt] of holders) {
    if (expiresAt <= now) ended.set(sessionId, 'session_expired')
    else if (live && !live.has(sessionId)) ended.set(sessionId, 'signed_out')
  }
  return ended
}
