import fp from 'fastify-plugin'
import { createMetrics, type Metrics } from '../metrics/metrics.js'
import metricsRoutes from '../routes/metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's Prometheus registry and metric handles. */
    metrics: Metrics
  }
}

/**
 * Decorates `app.metrics`, feeds it from the broker, the storage monitor and every response,
 * and serves it on `GET /metrics`.
 */
export default fp(
  async (app) => {
    const metrics = createMetrics({
      sseClients: () => app.broker.subscriberCount,
      mode: () => app.modes.mode,
    })
    app.decorate('metrics', metrics)
    const detachBroker = app.broker.observe(metrics.brokerObserver)
    const detachMonitor = app.storageMonitor.onPing(metrics.recordStoragePing)

    // Every response is observed, errors and 404s included. The route pattern, never the URL,
    // is the label, so part numbers cannot multiply the series; unknown URLs share one value.
    const { httpRequestDuration } = metrics
    app.addHook('onResponse', async (request, reply) => {
      httpRequestDuration.observe(
        {
          method: request.method,
          route: request.routeOptions.url ?? 'unmatched',
          status_code: reply.statusCode,
        },
        reply.elapsedTime / 1000,
      )
    })

    // Not encapsulated, so GET /metrics is a route of the root context: hooks added to it by
    // plugins registered later (auth's onRequest) are bound to its routes when the app gets ready.
    await app.register(fp(metricsRoutes, { name: 'metricsRoutes' }))

    app.addHook('onClose', async () => {
      detachBroker()
      detachMonitor()
    })
  },
  { name: 'metrics', dependencies: ['broker', 'modes', 'storage'] },
)
