import fp from 'fastify-plugin'
import { PrincipalCache } from '../domain/principalCache.js'
import { RIGHTS_CHANNEL } from '../domain/tokens.js'

/** What a revoking request does, so that no process serves the rights it ends from memory. */
export interface Principals {
  cache: PrincipalCache
  /**
   * Runs `end` (a statement that deletes rights and NOTIFYs `notice` on RIGHTS_CHANNEL), drops
   * them here, and with PostgreSQL waits until this process hears its own notice (at most
   * ECHO_WAIT_MS): PostgreSQL signals every listening connection at the commit, so by then the
   * other replicas have been told too, and the request answers after they were.
   */
  withdraw<T>(notice: string, end: () => Promise<T>): Promise<T>
}

declare module 'fastify' {
  interface FastifyInstance {
    principals: Principals
  }
}

/** Principals remembered per process; each entry is a few hundred bytes. */
const MAX_ENTRIES = 10_000
/** Bounds what a change made behind silo's back (a DELETE in psql) leaves cached. */
const MAX_AGE_MS = 60_000
const ECHO_WAIT_MS = 1000

/**
 * Decorates `app.principals`: the cache of authenticated principals (src/domain/principalCache.ts)
 * and how a revocation clears it on every replica. On PostgreSQL it LISTENs on RIGHTS_CHANNEL;
 * a lost notification connection drops the whole cache, since notices may have been missed.
 */
export default fp(
  async (app) => {
    const cache = new PrincipalCache({ maxEntries: MAX_ENTRIES, maxAgeMs: MAX_AGE_MS })
    const awaited = new Map<string, () => void>()
    const unlisten = app.db.listen
      ? await app.db.listen(
          RIGHTS_CHANNEL,
          (notice) => {
            cache.forgetNotice(notice)
            awaited.get(notice)?.()
          },
          () => {
            cache.clear()
            for (const heard of awaited.values()) heard()
          },
        )
      : null

    const principals: Principals = {
      cache,
      async withdraw(notice, end) {
        let heard: Promise<void> | undefined
        let timer: NodeJS.Timeout | undefined
        if (unlisten) {
          heard = new Promise<void>((resolve) => {
            awaited.set(notice, resolve)
            timer = setTimeout(resolve, ECHO_WAIT_MS)
          })
        }
        try {
          const result = await end()
          cache.forgetNotice(notice)
          await heard
          return result
        } finally {
          clearTimeout(timer)
          awaited.delete(notice)
        }
      },
    }
    app.decorate('principals', principals)
    app.addHook('preClose', async () => {
      await unlisten?.()
    })
  },
  { name: 'principals', dependencies: ['database'] },
)
