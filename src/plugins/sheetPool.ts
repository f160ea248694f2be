import fp from 'fastify-plugin'
import { SheetPool } from '../workers/sheetPool.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The worker threads that read imports and encode exports. */
    sheetPool: SheetPool
  }
}

/** Decorates `app.sheetPool` and stops its threads on close. */
export default fp(
  async (app) => {
    const pool = new SheetPool()
    app.decorate('sheetPool', pool)
    app.addHook('onClose', async () => {
      await pool.close()
    })
  },
  { name: 'sheetPool' },
)
