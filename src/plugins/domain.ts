import fp from 'fastify-plugin'
import type { DomainContext } from '../domain/context.js'
import { sweepStaleUploads } from '../domain/revisions.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The context every domain call gets: database, file storage and the fan-out wake-up. */
    domain: DomainContext
  }
}

/**
 * How long an upload can be under way: nothing staged that long ago belongs to a live one. No
 * request lasts longer than server.request_timeout (a day when that is off).
 */
function uploadLifetimeMs(requestTimeoutMs: number): number {
  return (requestTimeoutMs > 0 ? requestTimeoutMs : 24 * 60 * 60 * 1000) + 60 * 1000
}

const SWEEP_INTERVAL_MS = 60 * 60 * 1000

/**
 * Decorates `app.domain`, the context app.ts builds (and wires to the broker), and removes what
 * uploads that never completed left behind: at start-up and every hour. At start-up on PGlite
 * everything staged is a leftover, since no other process can be using this data; elsewhere
 * another replica may be uploading, so only what is older than any upload can be goes.
 */
export default fp<{ context: DomainContext; requestTimeoutMs: number }>(
  async (app, { context: domain, requestTimeoutMs }) => {
    app.decorate('domain', domain)

    const lifetime = uploadLifetimeMs(requestTimeoutMs)
    const sweep = async (olderThanMs: number) => {
      try {
        const removed =
          (await sweepStaleUploads(domain, olderThanMs)) +
          (await domain.storage.removeLeftovers(olderThanMs))
        if (removed > 0) app.log.info(`removed ${removed} leftover(s) of unfinished uploads`)
      } catch (err) {
        app.log.warn({ err }, 'removing leftovers of unfinished uploads failed; will retry')
      }
    }
    const timer = setInterval(() => void sweep(lifetime), SWEEP_INTERVAL_MS)
    timer.unref()
    app.addHook('onReady', () => sweep(app.db.kind === 'pglite' ? 0 : lifetime))
    app.addHook('preClose', async () => clearInterval(timer))
  },
  { name: 'domain', dependencies: ['database'] },
)
