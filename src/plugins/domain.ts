import fp from 'fastify-plugin'
import type { DomainContext } from '../domain/context.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The context every domain call gets: database, file storage and the fan-out wake-up. */
    domain: DomainContext
  }
}

export default fp(
  async (app) => {
    app.decorate('domain', {
      db: app.db,
      storage: app.storage,
      eventsCommitted: app.eventsCommitted,
    })
  },
  { name: 'domain', dependencies: ['database', 'broker', 'serverState'] },
)
