import swaggerUi from '@fastify/swagger-ui'
import type { FastifyPluginAsync } from 'fastify'

export const DOCS_PREFIX = '/docs'

/**
 * The reference UI loads only its own files from this server, so it works offline; the policy
 * lets the browser load nothing else either. Swagger UI sets inline styles as it renders, which
 * only style-src 'unsafe-inline' allows; scripts stay limited to the server's files.
 */
const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/**
 * The API description and its reference UI. Both are public: the description tells what a
 * client may send, nothing of the data (README, "API description").
 */
const apiDescriptionRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/api/openapi.json',
    {
      config: { role: 'none' },
      schema: { response: { 200: { description: 'This description, OpenAPI 3.1.' } } },
    },
    async () => app.swagger(),
  )
  await app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    uiHooks: {
      // @fastify/swagger-ui 6.1.3 redirects `/static/index.html?…` to itself: it strips the
      // file name only at the very end of the URL, query included. This sends every such
      // request where that redirect means to.
      onRequest: async (request, reply) => {
        if (request.routeOptions.url === `${DOCS_PREFIX}/static/index.html`) {
          return reply.redirect(`${DOCS_PREFIX}/`)
        }
      },
    },
    staticCSP: DOCS_CSP,
    theme: { title: 'silo API' },
    uiConfig: { deepLinking: true },
  })
}

export default apiDescriptionRoutes
