import fp from 'fastify-plugin'
import { PrincipalCache } from '../domain/principalCache.js'
import { type EndedRights, RIGHTS_CHANNEL, endedRightsOf, rightsNotice } from '../domain/tokens.js'

export interface Principals {
  cache: PrincipalCache
  /**
   * Runs `end` (a statement that deletes the rights and NOTIFYs their `rightsNotice` on
   * RIGHTS_CHANNEL), then withdraws them here, and with PostgreSQL waits until this process
   * hears its own notice (at most ECHO_WAIT_MS): by then PostgreSQL has signalled every
   * replica's listening connection, so a client that moves on to another replica right after the
   * answer almost always finds the notice there before it. Almost: only a replica's own step
   * (see `onWithdrawn`) is what guarantees its refusal.
   */
  withdraw<T>(ended: EndedRights, end: () => Promise<T>): Promise<T>
  /**
   * Calls `listener` whenever rights end, whichever process ended them, right after this
   * process stopped remembering them, in the same step: once the listener has seen rights end,
   * no request here is granted them.
   */
  onWithdrawn(listener: (ended: EndedRights) => void): void
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
 * and how ended rights leave it on every replica. On PostgreSQL it LISTENs on RIGHTS_CHANNEL;
 * while that connection is down the cache is suspended (every request reads the database),
 * since notices sent meanwhile never arrive; it resumes empty once LISTEN is back.
 */
export default fp(
  async (app) => {
    const cache = new PrincipalCache({ maxEntries: MAX_ENTRIES, maxAgeMs: MAX_AGE_MS })
    const listeners: ((ended: EndedRights) => void)[] = []
    const withdrawn = (ended: EndedRights) => {
      cache.forget(ended)
      for (const listener of listeners) listener(ended)
    }
    const echoes = new Map<string, () => void>()
    // Until its connection is lost, LISTEN is on from here: `listen` resolves once it is.
    let listening = app.db.listen !== undefined
    const unlisten = app.db.listen
      ? await app.db.listen(
          RIGHTS_CHANNEL,
          (notice) => {
            const ended = endedRightsOf(notice)
            if (ended) withdrawn(ended)
            echoes.get(notice)?.()
          },
          () => {
            cache.resume()
            listening = true
          },
          () => {
            listening = false
            cache.suspend()
            for (const heard of echoes.values()) heard()
          },
        )
      : null

    const principals: Principals = {
      cache,
      async withdraw(ended, end) {
        const notice = rightsNotice(ended)
        let heard: Promise<void> | undefined
        let timer: NodeJS.Timeout | undefined
        if (listening) {
          heard = new Promise<void>((resolve) => {
            echoes.set(notice, resolve)
            timer = setTimeout(resolve, ECHO_WAIT_MS)
          })
        }
        try {
          const result = await end()
          withdrawn(ended)
          await heard
          return result
        } finally {
          clearTimeout(timer)
          echoes.delete(notice)
        }
      },
      onWithdrawn(listener) {
        listeners.push(listener)
      },
    }
    app.decorate('principals', principals)
    app.addHook('preClose', async () => {
      await unlisten?.()
    })
  },
  { name: 'principals', dependencies: ['database'] },
)
