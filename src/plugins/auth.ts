import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { AppError } from '../domain/errors.js'
import { authenticate, type Principal, type Role, roleAllows } from '../domain/tokens.js'

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

/**
 * Every route declares `config.role`; a route without one refuses to register, so no route can
 * be public by accident. The check runs in onRequest, before any body is read.
 */
export default fp(
  async (app) => {
    app.decorateRequest('principal', null)
    app.addHook('onRoute', (route) => {
      const role = (route.config as { role?: RouteRole } | undefined)?.role
      if (!role) throw new Error(`route ${route.method} ${route.url} declares no role`)
    })
    app.addHook('onRequest', async (request) => {
      const role = request.routeOptions.config.role
      // Unmatched URLs have no route config; they fall through to the 404 handler.
      if (role === undefined || role === 'none') return
      const token = bearerToken(request)
      if (token === undefined) throw unauthorized('missing bearer token')
      const principal = await authenticate(app.db, token)
      if (!principal) throw unauthorized('invalid token')
      if (principal === 'expired') throw unauthorized('token expired')
      if (!roleAllows(principal.role, role)) {
        throw new AppError(403, 'forbidden', `this needs the ${role} role`)
      }
      request.principal = principal
    })
  },
  { name: 'auth', dependencies: ['database'] },
)
