import type { FastifyPluginAsync } from 'fastify'

/** GET /metrics: this app's metrics in the Prometheus text format, for a viewer token. */
const metricsRoutes: FastifyPluginAsync = async (app) => {
  app.get('/metrics', { config: { role: 'viewer' } }, async (_request, reply) => {
    const { registry } = app.metrics
    const body = await registry.metrics()
    return reply.type(registry.contentType).send(body)
  })
}

export default metricsRoutes
