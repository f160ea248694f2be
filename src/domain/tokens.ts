import { createHash, randomBytes } from 'node:crypto'
import { ConfigError, parseDuration } from '../config.js'
import type { Database, Queryable } from '../db/database.js'
import { AppError, notFound } from './errors.js'
import { SYSTEM_ACTOR } from './context.js'
import type { Actor, Role, TokenInfo } from './schemas.js'

export { ROLES, type Role } from './schemas.js'

const RANK: Record<Role, number> = { viewer: 1, editor: 2, admin: 3 }

export function roleAllows(held: Role, needed: Role): boolean {
  return RANK[held] >= RANK[needed]
}

export interface Principal {
  tokenId: number
  name: string
  role: Role
  /** When the token stops working (ms since the epoch), or null if it never expires. */
  expiresAt: number | null
  /**
   * The browser session this right came through, when it came through one: its id (the hash of
   * its cookie) and its end (never later than the token's expiry).
   */
  session?: { id: string; expiresAt: number }
}

export type { TokenInfo } from './schemas.js'

/**
 * The NOTIFY channel naming rights that ended (`rightsNotice`), so that every process drops
 * what it remembers of them and ends the streams they opened (src/plugins/principals.ts).
 */
export const RIGHTS_CHANNEL = 'silo_rights'

/** Rights that ended: a revoked token (its sessions go with it) or a signed-out session. */
export type EndedRights = { tokenId: number } | { sessionId: string }

export function rightsNotice(ended: EndedRights): string {
  return 'tokenId' in ended ? `token:${ended.tokenId}` : `session:${ended.sessionId}`
}

/** What a RIGHTS_CHANNEL notice names; null for one this version does not know. */
export function endedRightsOf(notice: string): EndedRights | null {
  const [kind, value = ''] = notice.split(':', 2) as [string, string?]
  if (kind === 'token' && /^[0-9]+$/.test(value)) return { tokenId: Number(value) }
  if (kind === 'session' && value !== '') return { sessionId: value }
  return null
}

/** Who a token's requests act as, in the rows and events they write. */
export function tokenActor(principal: Principal | null): Actor {
  // Only public routes run without a principal, and none of them writes.
  if (!principal) throw new Error('a change was made without an authenticated token')
  return { token_id: principal.tokenId, name: principal.name }
}

/** Tokens are 256 random bits; a fast hash is enough to make a stolen table useless. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

function generateToken(): string {
  return `silo_${randomBytes(32).toString('base64url')}`
}

interface TokenRow {
  id: number
  name: string
  role: Role
  prefix: string
  created_at: Date | string
  created_by: Actor | null
  expires_at: Date | string | null
}

const TOKEN_COLUMNS = 'id::float8 AS id, name, role, prefix, created_at, created_by, expires_at'

function toInfo(row: TokenRow): TokenInfo {
  return {
    id: Number(row.id),
    name: row.name,
    role: row.role,
    prefix: row.prefix,
    created_at: new Date(row.created_at).toISOString(),
    created_by: row.created_by,
    expires_at: row.expires_at === null ? null : new Date(row.expires_at).toISOString(),
  }
}

/** The longest lifetime a token can be given (about 100 years), so every date stays in range. */
const MAX_LIFETIME_MS = 36_500 * 86_400_000

/** How a token is asked to expire: after a duration (`30d`, as in the config) or at a time. */
export interface ExpiryRequest {
  expires_in?: string
  expires_at?: string
}

const badExpiry = (message: string) => new AppError(400, 'bad_request', message)

/** When a token created at `now` with `request` expires (null: never); a bad request is a 400. */
export function tokenExpiry(request: ExpiryRequest, now = Date.now()): Date | null {
  const { expires_in: expiresIn, expires_at: expiresAt } = request
  if (expiresIn !== undefined && expiresAt !== undefined) {
    throw badExpiry('give expires_in or expires_at, not both')
  }
  let at: number
  if (expiresIn !== undefined) {
    try {
      at = now + parseDuration(expiresIn)
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      throw badExpiry('expires_in must be a duration such as 3600s, 12h or 30d')
    }
  } else if (expiresAt !== undefined) {
    at = Date.parse(expiresAt)
    if (!Number.isFinite(at)) throw badExpiry('expires_at must be an ISO 8601 date-time')
  } else {
    return null
  }
  const field = expiresIn !== undefined ? 'expires_in' : 'expires_at'
  if (at <= now) throw badExpiry(`${field} must lie in the future`)
  if (at - now > MAX_LIFETIME_MS) throw badExpiry(`${field} must lie within 36500 days`)
  return new Date(at)
}

/**
 * Creates a token; the secret is returned here once and stored only as its hash. `createdBy`
 * is recorded with it (the server itself when not given: the first start's admin token).
 */
export async function createToken(
  db: Queryable,
  input: { name: string; role: Role; expiresAt?: Date | null; createdBy?: Actor },
): Promise<TokenInfo & { token: string }> {
  const token = generateToken()
  const { rows } = await db.query<TokenRow>(
    `INSERT INTO api_tokens (name, role, token_hash, prefix, expires_at, created_by)
     VALUES ($1, $2, $3, $4, $5, $6)
     RETURNING ${TOKEN_COLUMNS}`,
    [
      input.name,
      input.role,
      hashToken(token),
      token.slice(0, 10),
      input.expiresAt?.toISOString() ?? null,
      JSON.stringify(input.createdBy ?? SYSTEM_ACTOR),
    ],
  )
  return { ...toInfo(rows[0] as TokenRow), token }
}

export async function listTokens(db: Queryable): Promise<TokenInfo[]> {
  const { rows } = await db.query<TokenRow>(
    `SELECT ${TOKEN_COLUMNS} FROM api_tokens ORDER BY api_tokens.id`,
  )
  return rows.map(toInfo)
}

/**
 * Revokes a token: its row goes (which is what ends its rights, on every replica), and who
 * revoked it is kept in token_revocations, in the same statement; which NOTIFYs every process
 * that caches principals (the CLI's revocation included) at its commit.
 */
export async function revokeToken(
  db: Queryable,
  id: number,
  revokedBy: Actor = SYSTEM_ACTOR,
): Promise<void> {
  const { rows } = await db.query(
    `WITH revoked AS (DELETE FROM api_tokens WHERE id = $1 RETURNING id, name, role)
     , recorded AS (
       INSERT INTO token_revocations (token_id, name, role, revoked_by)
       SELECT id, name, role, $2 FROM revoked RETURNING token_id
     )
     SELECT token_id, pg_notify($3, $4) FROM recorded`,
    [id, JSON.stringify(revokedBy), RIGHTS_CHANNEL, rightsNotice({ tokenId: id })],
  )
  if (rows.length === 0) throw notFound(`token ${id}`)
}

/** Who a token belongs to; `expired` for a known token past its expiry, null for no token. */
export async function authenticate(
  db: Queryable,
  token: string,
): Promise<Principal | 'expired' | null> {
  if (!token.startsWith('silo_') || token.length > 200) return null
  const found = await tokenByHash(db, hashToken(token))
  if (!found) return null
  return found.expired ? 'expired' : found.principal
}

/** A principal as a lookup read it: whether its right has ended, and the database's clock. */
export interface FoundPrincipal {
  principal: Principal
  expired: boolean
  dbNow: number
}

/** What every principal lookup selects besides the token's columns (see `LOOKUP_COLUMNS`). */
export interface LookupRow {
  id: number
  name: string
  role: Role
  expires_at: Date | string | null
  expired: boolean
  db_now: number
}

/**
 * The database's clock as `db_now`: it decides when a right ends, so that every replica
 * agrees, and the cache learns its offset from this process's clock.
 */
export const DB_NOW_COLUMN = '(extract(epoch FROM now()) * 1000)::float8 AS db_now'

/** A lookup's row as what it found; `principal` defaults to the token's own right. */
export function foundPrincipal(
  row: LookupRow,
  principal: Principal = tokenPrincipal(row),
): FoundPrincipal {
  return { principal, expired: row.expired === true, dbNow: Number(row.db_now) }
}

/** The token stored under `hash`, whether it has expired, and the database's clock. */
export async function tokenByHash(db: Queryable, hash: string): Promise<FoundPrincipal | null> {
  const { rows } = await db.query<LookupRow>(
    `SELECT id::float8 AS id, name, role, expires_at, expires_at <= now() AS expired,
            ${DB_NOW_COLUMN}
     FROM api_tokens WHERE token_hash = $1`,
    [hash],
  )
  const row = rows[0]
  return row ? foundPrincipal(row) : null
}

/** A token's row as the right it grants (a session adds its own end). */
export function tokenPrincipal(row: {
  id: number
  name: string
  role: Role
  expires_at: Date | string | null
}): Principal {
  return {
    tokenId: Number(row.id),
    name: row.name,
    role: row.role,
    expiresAt: row.expires_at === null ? null : new Date(row.expires_at).getTime(),
  }
}

/**
 * Of the tokens `ids`, those still stored, each mapped to whether it has expired by the
 * database's clock. A token missing from the answer has been revoked.
 */
export async function storedTokens(db: Queryable, ids: number[]): Promise<Map<number, boolean>> {
  const { rows } = await db.query<{ id: number; expired: boolean | null }>(
    `SELECT id::float8 AS id, expires_at <= now() AS expired
     FROM api_tokens WHERE id = ANY($1::bigint[])`,
    [ids],
  )
  return new Map(rows.map((row) => [Number(row.id), row.expired === true]))
}

// Advisory lock keys in use: 5110 migrations, 5111 event order, 5112 pruning, 5113 BOM edits.
const BOOTSTRAP_LOCK = 5114

/**
 * On a database with no tokens at all, creates the first admin token so a fresh install can be
 * used; returns its secret, or null when tokens exist already.
 */
export async function ensureBootstrapAdmin(db: Database): Promise<string | null> {
  // Replicas starting together on an empty PostgreSQL database would each make one; the lock
  // lets the first decide.
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [BOOTSTRAP_LOCK])
    const { rows } = await tx.query('SELECT 1 FROM api_tokens LIMIT 1')
    if (rows.length > 0) return null
    const created = await createToken(tx, { name: 'bootstrap-admin', role: 'admin' })
    return created.token
  })
}
