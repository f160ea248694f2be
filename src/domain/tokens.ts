import { createHash, randomBytes } from 'node:crypto'
import type { Database, Queryable } from '../db/database.js'
import { notFound } from './errors.js'

export const ROLES = ['viewer', 'editor', 'admin'] as const
export type Role = (typeof ROLES)[number]

const RANK: Record<Role, number> = { viewer: 1, editor: 2, admin: 3 }

export function roleAllows(held: Role, needed: Role): boolean {
  return RANK[held] >= RANK[needed]
}

export interface Principal {
  tokenId: number
  name: string
  role: Role
}

export interface TokenInfo {
  id: number
  name: string
  role: Role
  prefix: string
  created_at: string
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
}

function toInfo(row: TokenRow): TokenInfo {
  return {
    id: Number(row.id),
    name: row.name,
    role: row.role,
    prefix: row.prefix,
    created_at: new Date(row.created_at).toISOString(),
  }
}

/** Creates a token; the secret is returned here once and stored only as its hash. */
export async function createToken(
  db: Queryable,
  input: { name: string; role: Role },
): Promise<TokenInfo & { token: string }> {
  const token = generateToken()
  const { rows } = await db.query<TokenRow>(
    `INSERT INTO api_tokens (name, role, token_hash, prefix) VALUES ($1, $2, $3, $4)
     RETURNING id::float8 AS id, name, role, prefix, created_at`,
    [input.name, input.role, hashToken(token), token.slice(0, 10)],
  )
  return { ...toInfo(rows[0] as TokenRow), token }
}

export async function listTokens(db: Queryable): Promise<TokenInfo[]> {
  const { rows } = await db.query<TokenRow>(
    'SELECT id::float8 AS id, name, role, prefix, created_at FROM api_tokens ORDER BY id',
  )
  return rows.map(toInfo)
}

export async function revokeToken(db: Queryable, id: number): Promise<void> {
  const { rows } = await db.query('DELETE FROM api_tokens WHERE id = $1 RETURNING id', [id])
  if (rows.length === 0) throw notFound(`token ${id}`)
}

export async function authenticate(db: Queryable, token: string): Promise<Principal | null> {
  if (!token.startsWith('silo_') || token.length > 200) return null
  const { rows } = await db.query<{ id: number; name: string; role: Role }>(
    'SELECT id::float8 AS id, name, role FROM api_tokens WHERE token_hash = $1',
    [hashToken(token)],
  )
  const row = rows[0]
  return row ? { tokenId: Number(row.id), name: row.name, role: row.role } : null
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
