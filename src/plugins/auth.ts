import fastifyCookie from '@fastify/cookie'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { AppError } from '../domain/errors.js'
import type { Queryable } from '../db/database.js'
import type { PrincipalCache } from '../domain/principalCache.js'
import { SESSION_COOKIE } from '../domain/sessions.js'
import { type Principal, type Role, roleAllows } from '../domain/tokens.js'

/** The role a route needs; `none` marks the few public routes (probes). */
export type RouteRole = Role | 'none'

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null
  }
  interface FastifyContextConfig {
    role?: RouteRole
    /** Lets browsers' EventSource, which cannot set headers, pass `?token=`. */
    queryToken?: boolean
  }
}

function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header) {
    const match = /^Bearer\s+(\S+)$/i.exec(header)
    return match?.[1] ?? ''
  }
  if (request.routeOptions.config.queryToken) {
    const token = (request.query as Record<string, unknown> | undefined)?.token
    return typeof token === 'string' ? token : undefined
  }
  return undefined
}

const unauthorized = (message: string) =>
  new AppError(401, 'unauthorized', message, { 'WWW-Authenticate': 'Bearer realm="silo"' })

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * A browser sends the session cookie with whatever request a page makes; only the console's own
 * pages may use it to change anything. Browsers mark every request with `Sec-Fetch-Site` and
 * every non-GET one with `Origin`; either naming another site refuses the request (the
 * SameSite=Strict cookie is the first guard, this the second, for browsers that lack it).
 */
export function refuseCrossSite(request: FastifyRequest): void {
  if (SAFE_METHODS.has(request.method)) return
  const site = request.headers['sec-fetch-site']
  const origin = request.headers.origin
  const own = `${request.protocol}://${request.host}`
  if (
    (site !== undefined && site !== 'same-origin' && site !== 'none') ||
    (origin !== undefined && origin !== own)
  ) {
    throw new AppError(
      403,
      'cross_site_refused',
      `a ${request.method} with a session cookie must come from this server's own pages (${own})`,
    )
  }
}

/** Who holds the request's right: its bearer token, else its session cookie. */
async function principalOf(
  db: Queryable,
  principals: PrincipalCache,
  request: FastifyRequest,
): Promise<Principal> {
  const token = bearerToken(request)
  if (token !== undefined) {
    const principal = await principals.token(db, token)
    if (!principal) throw unauthorized('invalid token')
    if (principal === 'expired') throw unauthorized('token expired')
    return principal
  }
  const session = request.cookies[SESSION_COOKIE]
  if (session === undefined) throw unauthorized('missing bearer token')
  refuseCrossSite(request)
  const principal = await principals.session(db, session)
  if (!principal) throw unauthorized('the session has ended: sign in again')
  if (principal === 'expired') throw unauthorized('the session has expired: sign in again')
  return principal
}

/**
 * Every route declares `config.role`; a route without one refuses to register, so no route can
 * be public by accident. The check runs in onRequest, before any body is read.
 */
export default fp(
  async (app) => {
    await app.register(fastifyCookie)
    app.decorateRequest('principal', null)
    app.addHook('onRoute', (route) => {
      const role = (route.config as { role?: RouteRole } | undefined)?.role
      if (!role) throw new Error(`route ${route.method} ${route.url} declares no role`)
    })
    app.addHook('onRequest', async (request) => {
      const role = request.routeOptions.config.role
      // Unmatched URLs have no route config; they fall through to the 404 handler.
      if (role === undefined || role === 'none') return
      const principal = await principalOf(app.db, app.principals.cache, request)
      if (!roleAllows(principal.role, role)) {
        throw new AppError(403, 'forbidden', `this needs the ${role} role`)
      }
      request.principal = principal
    })
  },
  { name: 'auth', dependencies: ['database', 'principals'] },
)
