import cors from '@fastify/cors'
import fp from 'fastify-plugin'

/**
 * Cross-origin access for the origins in `server.cors_origins` only (none by default). A page on
 * such an origin can use the whole API: every method it has, the request headers it reads
 * (conditional requests, ranges, the stream's resume id), and the response headers a client
 * acts on. Credentials (cookies) are not shared across origins.
 */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']
const REQUEST_HEADERS = [
  'Authorization',
  'Content-Type',
  'If-Match',
  'If-None-Match',
  'If-Range',
  'Last-Event-ID',
  'Range',
]
const RESPONSE_HEADERS = [
  'ETag',
  'Retry-After',
  'Content-Disposition',
  'Content-Range',
  'Accept-Ranges',
  'WWW-Authenticate',
]

export default fp<{ origins: string[] }>(
  async (app, { origins }) => {
    if (origins.length === 0) return
    await app.register(cors, {
      origin: origins,
      credentials: false,
      methods: METHODS,
      allowedHeaders: REQUEST_HEADERS,
      exposedHeaders: RESPONSE_HEADERS,
      // Browsers cap this themselves (Chromium at 2 hours); ten minutes spares most preflights.
      maxAge: 600,
    })
  },
  { name: 'cors' },
)
