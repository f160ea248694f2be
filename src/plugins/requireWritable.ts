import type { preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { AppError } from '../domain/errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    requireWritable: preHandlerAsyncHookHandler
  }
  interface FastifyContextConfig {
    /** Set to false on the rare write route that must work in read-only (the mode switch). */
    writes?: boolean
  }
}

const READ_ONLY_RETRY_AFTER_S = '30'
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/**
 * One preHandler that refuses writes in read-only mode. It reads only in-process state, never
 * the network. Added to every write route at registration, so none can miss it.
 */
export default fp(
  async (app) => {
    const requireWritable: preHandlerAsyncHookHandler = async () => {
      if (app.modes.isReadOnly) {
        throw new AppError(503, 'server_read_only', 'the server is read-only; retry later', {
          'Retry-After': READ_ONLY_RETRY_AFTER_S,
        })
      }
    }
    app.decorate('requireWritable', requireWritable)
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method]
      const writes = (route.config as { writes?: boolean } | undefined)?.writes
      if (!methods.some((m) => WRITE_METHODS.has(m)) || writes === false) return
      const existing = route.preHandler
      route.preHandler = [
        requireWritable,
        ...(Array.isArray(existing) ? existing : existing ? [existing] : []),
      ]
    })
  },
  { name: 'requireWritable', dependencies: ['modes'] },
)
