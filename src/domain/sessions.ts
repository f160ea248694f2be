import { randomBytes } from 'node:crypto'
import type { Queryable } from '../db/database.js'
import type { SessionInfo } from './schemas.js'
import {
  DB_NOW_COLUMN,
  type FoundPrincipal,
  type LookupRow,
  type Principal,
  RIGHTS_CHANNEL,
  authenticate,
  foundPrincipal,
  hashToken,
  rightsNotice,
  tokenPrincipal,
} from './tokens.js'

/**
 * Browser sessions (the README's "Web console"): a token pasted once is exchanged for a random
 * cookie value that the database knows only by its hash. A session lives at most its lifetime
 * and never longer than its token; revoking the token deletes its sessions (ON DELETE CASCADE).
 */

export const SESSION_COOKIE = 'silo_session'

/** Starts a session for a valid token; null when the token is not one (or has expired). */
export async function startSession(
  db: Queryable,
  token: string,
  lifetimeMs: number,
): Promise<{
  secret: string
  principal: Principal
  info: SessionInfo
} | null> {
  const principal = await authenticate(db, token)
  if (!principal || principal === 'expired') return null
  const secret = randomBytes(32).toString('base64url')
  const idHash = hashToken(secret)
  // Ended sessions are swept here, where new ones are made, so the table holds live ones.
  await db.query('DELETE FROM sessions WHERE expires_at <= now()')
  const { rows } = await db.query<{ expires_at: Date | string }>(
    `INSERT INTO sessions (id_hash, token_id, expires_at)
     SELECT $1, id, least(now() + $3 * interval '1 millisecond', expires_at)
     FROM api_tokens WHERE id = $2
     RETURNING expires_at`,
    [idHash, principal.tokenId, lifetimeMs],
  )
  const row = rows[0]
  // Revoked between the two statements.
  if (!row) return null
  const started = {
    ...principal,
    session: { id: idHash, expiresAt: new Date(row.expires_at).getTime() },
  }
  return { secret, principal: started, info: sessionInfo(started) }
}

/** What `GET /api/session` tells a page about the right it holds, and until when. */
export function sessionInfo(principal: Principal): SessionInfo {
  const end = principal.session?.expiresAt ?? principal.expiresAt
  return {
    token_id: principal.tokenId,
    name: principal.name,
    role: principal.role,
    expires_at: end === null ? null : new Date(end).toISOString(),
  }
}

/** The session whose id is `idHash`, whether it has ended, and the database's clock. */
export async function sessionByHash(db: Queryable, idHash: string): Promise<FoundPrincipal | null> {
  const { rows } = await db.query<LookupRow & { session_expires_at: Date | string }>(
    `SELECT t.id::float8 AS id, t.name, t.role, t.expires_at, s.expires_at AS session_expires_at,
            s.expires_at <= now() AS expired, ${DB_NOW_COLUMN}
     FROM sessions s JOIN api_tokens t ON t.id = s.token_id WHERE s.id_hash = $1`,
    [idHash],
  )
  const row = rows[0]
  if (!row) return null
  return foundPrincipal(row, {
    ...tokenPrincipal(row),
    session: { id: idHash, expiresAt: new Date(row.session_expires_at).getTime() },
  })
}

/** Ends a session; NOTIFYs every process that caches principals, at its commit. */
export async function endSession(db: Queryable, sessionId: string): Promise<void> {
  await db.query(
    `WITH ended AS (DELETE FROM sessions WHERE id_hash = $1 RETURNING id_hash)
     SELECT pg_notify($2, $3) FROM ended`,
    [sessionId, RIGHTS_CHANNEL, rightsNotice({ sessionId })],
  )
}

/** Of the sessions `ids` (hashes), those that still hold by the database's clock. */
export async function liveSessions(db: Queryable, ids: string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ id_hash: string }>(
    'SELECT id_hash FROM sessions WHERE id_hash = ANY($1::text[]) AND expires_at > now()',
    [ids],
  )
  return new Set(rows.map((r) => r.id_hash))
}
