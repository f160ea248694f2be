import { readFileSync } from 'node:fs'
import swagger from '@fastify/swagger'
import type { RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { eventCatalogue } from '../events/catalogue.js'
import { eventStreamExtras } from '../openapi/eventStream.js'
import { describeOperation, securitySchemes } from '../openapi/operation.js'
import { operationExtras } from '../openapi/operationExtras.js'
import { DOCS_PREFIX } from '../openapi/routes.js'

const { version } = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as { version: string }

function isUnder(url: string, prefix: string): boolean {
  return url === prefix || url.startsWith(`${prefix}/`)
}

/**
 * Collects every route registered after it into the OpenAPI description (README, "API
 * description"), so it is registered before any route. The reference UI's routes come from
 * @fastify/swagger-ui, which cannot set a route's config: they get the `none` role here, in a
 * hook that runs before the auth plugin's check that every route declares one.
 */
export default fp(
  async (app) => {
    app.addHook('onRoute', (route) => {
      if (route.config?.role === undefined && isUnder(route.url, DOCS_PREFIX)) {
        route.config = { ...route.config, role: 'none' }
      }
    })
    const refusesWritesInReadOnly = (route: RouteOptions) =>
      app.hasDecorator('requireWritable') && [route.preHandler].flat().includes(app.requireWritable)
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'silo',
          version,
          description:
            'Item database server: items, revisions with files, bills of materials, and a live ' +
            'event stream of every change. Errors are `{"error": "<code>", "message": "..."}`.',
        },
        components: { securitySchemes },
      },
      transform: describeOperation(
        { ...operationExtras, 'GET /api/events': eventStreamExtras(eventCatalogue) },
        refusesWritesInReadOnly,
      ),
    })
  },
  { name: 'openapi' },
)
