import fp from 'fastify-plugin'
import type { DomainContext } from '../domain/context.js'
import { sweepStaleUploads } from '../domain/revisions.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The context every domain call gets: database, file storage and the fan-out wake-up. */
    domain: DomainContext
  }
}

// An upload still pending after a day was cut short by a crash or left behind while storage
// was down; no real upload runs that long.
const STALE_UPLOAD_MS = 24 * 60 * 60 * 1000
const SWEEP_INTERVAL_MS = 60 * 60 * 1000

export default fp(
  async (app) => {
    const domain: DomainContext = {
      db: app.db,
      storage: app.storage,
      eventsCommitted: app.eventsCommitted,
    }
    app.decorate('domain', domain)

    const sweep = async () => {
      try {
        const removed = await sweepStaleUploads(domain, STALE_UPLOAD_MS)
        if (removed > 0) app.log.info(`removed ${removed} abandoned upload(s)`)
      } catch (err) {
        app.log.warn({ err }, 'removing abandoned uploads failed; will retry')
      }
    }
    const timer = setInterval(() => void sweep(), SWEEP_INTERVAL_MS)
    timer.unref()
    app.addHook('onReady', sweep)
    app.addHook('preClose', async () => clearInterval(timer))
  },
  { name: 'domain', dependencies: ['database', 'broker', 'serverState'] },
)
