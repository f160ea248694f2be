import type { FastifyPluginAsync } from 'fastify'
import { Type } from 'typebox'
import { ServerMode } from './schemas.js'

const DATABASE_PING_TIMEOUT_MS = 2000

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

const ReadyBody = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  mode: ServerMode,
  database: Type.Union([Type.Literal('ok'), Type.Literal('unreachable')]),
  storage: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  sse_clients: Type.Integer(),
  shutting_down: Type.Boolean(),
})

/** Probes for orchestrators: liveness calls nothing, readiness asks the database. */
const healthRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/health',
    {
      config: { role: 'none' },
      schema: {
        response: { 200: Type.Object({ status: Type.Literal('ok'), mode: ServerMode }) },
      },
    },
    async () => ({ status: 'ok' as const, mode: app.lifecycle.mode }),
  )

  app.get(
    '/ready',
    { config: { role: 'none' }, schema: { response: { 200: ReadyBody, 503: ReadyBody } } },
    async (_request, reply) => {
      const { lifecycle, broker } = app
      let database: 'ok' | 'unreachable' = 'ok'
      try {
        await withTimeout(app.db.ping(), DATABASE_PING_TIMEOUT_MS)
      } catch {
        database = 'unreachable'
      }
      const ready = database === 'ok' && !lifecycle.shuttingDown
      return reply.code(ready ? 200 : 503).send({
        status: ready ? 'ready' : 'not_ready',
        mode: lifecycle.mode,
        database,
        storage: app.storageMonitor.isHealthy ? 'ok' : 'unavailable',
        sse_clients: broker.subscriberCount,
        shutting_down: lifecycle.shuttingDown,
      })
    },
  )
}

export default healthRoutes
