import type { Queryable } from '../db/database.js'
import { sessionByHash } from './sessions.js'
import {
  type EndedRights,
  type FoundPrincipal,
  type Principal,
  hashToken,
  tokenByHash,
} from './tokens.js'

/**
 * Who holds a token or a session, remembered between requests so that a request costs no
 * database query to authenticate (issue 14). Keys are hashes of the secrets, never the secrets.
 *
 * An entry goes when its rights go: revoking a token or signing out deletes the rows and
 * NOTIFYs RIGHTS_CHANNEL (in the same statement), and every process drops what it names
 * (`forget`). A process that cannot hear those notices must not answer from memory: while it is
 * `suspend`ed every lookup reads the database and nothing is stored, and `resume` starts from
 * an empty cache, since notices sent meanwhile are lost. Expiry needs no notification:
 * an entry carries its end and the database's clock offset, and is refused from then on, as the
 * database would. Entries older than `maxAgeMs` are looked up again, which bounds what a change
 * made behind silo's back (a DELETE in psql) can leave behind.
 */

interface Entry {
  principal: Principal
  /** The database's clock minus this process's, when it was read. */
  skewMs: number
  storedAt: number
}

export interface PrincipalCacheOptions {
  maxEntries: number
  maxAgeMs: number
  now?: () => number
}

export class PrincipalCache {
  private readonly entries = new Map<string, Entry>()
  // Bumped by every drop: a lookup that began before one must not store what it read, which
  // may be the very rights just dropped.
  private generation = 0
  private suspended = false
  private readonly now: () => number

  constructor(private readonly options: PrincipalCacheOptions) {
    this.now = options.now ?? Date.now
  }

  get size(): number {
    return this.entries.size
  }

  /** Who a token belongs to; `expired` for a known token past its expiry, null for none. */
  async token(db: Queryable, token: string): Promise<Principal | 'expired' | null> {
    if (!token.startsWith('silo_') || token.length > 200) return null
    const hash = hashToken(token)
    return this.lookup(
      `t:${hash}`,
      (p) => p.expiresAt,
      () => tokenByHash(db, hash),
    )
  }

  /** Who holds a session cookie; `expired` for one past its end, null for none known. */
  async session(db: Queryable, secret: string): Promise<Principal | 'expired' | null> {
    if (secret.length > 100) return null
    const hash = hashToken(secret)
    return this.lookup(
      `s:${hash}`,
      (p) => p.session?.expiresAt ?? p.expiresAt,
      () => sessionByHash(db, hash),
    )
  }

  /** Drops what `ended` names: a token's entry and its sessions' (ON DELETE CASCADE), or a session's. */
  forget(ended: EndedRights): void {
    this.generation++
    if ('sessionId' in ended) {
      this.entries.delete(`s:${ended.sessionId}`)
      return
    }
    for (const [key, entry] of this.entries) {
      if (entry.principal.tokenId === ended.tokenId) this.entries.delete(key)
    }
  }

  /** From now on until `resume`, every lookup reads the database and nothing is remembered. */
  suspend(): void {
    this.suspended = true
    this.clear()
  }

  /** Remembers again, from nothing: what was read while suspended may have ended unheard. */
  resume(): void {
    this.suspended = false
    this.clear()
  }

  private clear(): void {
    this.generation++
    this.entries.clear()
  }

  private async lookup(
    key: string,
    endOf: (principal: Principal) => number | null,
    read: () => Promise<FoundPrincipal | null>,
  ): Promise<Principal | 'expired' | null> {
    const now = this.now()
    const entry = this.entries.get(key)
    if (entry && now - entry.storedAt < this.options.maxAgeMs) {
      const end = endOf(entry.principal)
      // The database's test is `expires_at <= now()`, on its own clock.
      return end !== null && end <= now + entry.skewMs ? 'expired' : entry.principal
    }
    const generation = this.generation
    const found = await read()
    if (!found) {
      this.entries.delete(key)
      return null
    }
    if (found.expired) return 'expired'
    if (generation === this.generation && !this.suspended) {
      this.entries.delete(key)
      if (this.entries.size >= this.options.maxEntries) {
        // The oldest entry goes: a Map iterates in insertion order.
        const oldest = this.entries.keys().next()
        if (!oldest.done) this.entries.delete(oldest.value)
      }
      this.entries.set(key, {
        principal: found.principal,
        skewMs: found.dbNow - now,
        storedAt: now,
      })
    }
    return found.principal
  }
}
