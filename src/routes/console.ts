import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { Type } from 'typebox'
import { AppError } from '../domain/errors.js'

/**
 * `npm run build` puts the console (web/) in dist/console; this path reaches it from src/ (tests)
 * and from dist/ (`npm start`) alike.
 */
export const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url))

/**
 * The page runs only its own bundled script and style and talks only to this server: no inline
 * code, no CDN, no framing (the README's "Web console").
 */
const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ')

const YEAR_S = 365 * 24 * 3600

function secureHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
}

/**
 * The web console at `/`: index.html is never cached, so a new build is picked up at the next
 * load; the assets it names carry a content hash in their names and are cached for a year.
 */
const consoleRoutes: FastifyPluginAsync<{ dir?: string }> = async (app, { dir = CONSOLE_DIR }) => {
  const built = existsSync(`${dir}/index.html`)
  if (!built) app.log.warn(`the web console is not built (${dir}): run npm run build`)
  else await app.register(fastifyStatic, { root: dir, serve: false, index: false })
  const notBuilt = () =>
    new AppError(404, 'not_found', 'the web console is not built: run npm run build')

  app.get('/', { config: { role: 'none' }, schema: { hide: true } }, async (_request, reply) => {
    if (!built) throw notBuilt()
    return secureHeaders(reply)
      .header('cache-control', 'no-cache')
      .sendFile('index.html', { cacheControl: false })
  })

  app.get(
    '/assets/*',
    {
      config: { role: 'none' },
      schema: { hide: true, params: Type.Object({ '*': Type.String({ maxLength: 200 }) }) },
    },
    async (request, reply) => {
      if (!built) throw notBuilt()
      const name = (request.params as { '*': string })['*']
      return secureHeaders(reply).sendFile(`assets/${name}`, {
        maxAge: YEAR_S * 1000,
        immutable: true,
      })
    },
  )
}

export default consoleRoutes
