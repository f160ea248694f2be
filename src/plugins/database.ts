import fp from 'fastify-plugin'
import type { Database } from '../db/database.js'
import { migrate } from '../db/migrations.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Database
  }
}

/** Decorates `app.db` with an open, migrated database and closes it last on shutdown. */
export default fp<{ db: Database }>(
  async (app, { db }) => {
    await migrate(db)
    app.decorate('db', db)
    app.addHook('onClose', async () => {
      await db.close()
    })
  },
  { name: 'database' },
)
