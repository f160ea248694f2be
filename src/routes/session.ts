import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { AppError } from '../domain/errors.js'
import { SESSION_COOKIE, endSession, sessionInfo, startSession } from '../domain/sessions.js'
import type { Principal } from '../domain/tokens.js'
import { refuseCrossSite } from '../plugins/auth.js'
import { ErrorBody, SessionInfo, SessionRequest } from '../domain/schemas.js'
import { authErrors } from './schemas.js'

function setCookie(request: FastifyRequest, reply: FastifyReply, value: string, maxAgeS: number) {
  reply.setCookie(SESSION_COOKIE, value, {
    httpOnly: true,
    sameSite: 'strict',
    // Over plain http (the embedded default on 127.0.0.1) a Secure cookie would never be sent.
    secure: request.protocol === 'https',
    path: '/',
    maxAge: maxAgeS,
  })
}

/**
 * `POST /api/session` trades an API token for a session cookie (the web console signs in with
 * it, so no token is kept in the browser or put in a URL); `GET` says whose session it is;
 * `DELETE` signs out and ends the session's event streams. Both writes work in read-only mode:
 * signing in and out changes no item.
 */
const sessionRoutes: FastifyPluginAsync<{ lifetimeMs: number }> = async (plain, { lifetimeMs }) => {
  const app = plain.withTypeProvider<TypeBoxTypeProvider>()

  app.post(
    '/api/session',
    {
      config: { role: 'none', writes: false },
      schema: {
        body: SessionRequest,
        response: { 201: SessionInfo, 401: ErrorBody, 403: ErrorBody },
      },
    },
    async (request, reply) => {
      // A page elsewhere must not sign a browser in with a token of its choosing.
      refuseCrossSite(request)
      const started = await startSession(app.db, request.body.token, lifetimeMs)
      if (!started) {
        throw new AppError(
          401,
          'unauthorized',
          'that token is not valid (revoked, expired or mistyped)',
        )
      }
      const end = started.principal.session?.expiresAt ?? Date.now()
      const maxAgeS = Math.max(1, Math.floor((end - Date.now()) / 1000))
      setCookie(request, reply, started.secret, maxAgeS)
      return reply.code(201).send(started.info)
    },
  )

  app.get(
    '/api/session',
    {
      config: { role: 'viewer' },
      schema: { response: { 200: SessionInfo, ...authErrors } },
    },
    async (request) => sessionInfo(request.principal as Principal),
  )

  app.delete(
    '/api/session',
    {
      config: { role: 'viewer', writes: false },
      schema: { response: { 204: Type.Null(), ...authErrors } },
    },
    async (request, reply) => {
      const { session } = request.principal as Principal
      if (session) {
        await app.principals.withdraw({ sessionId: session.id }, () =>
          endSession(app.db, session.id),
        )
      }
      setCookie(request, reply, '', 0)
      return reply.code(204).send(null)
    },
  )
}

export default sessionRoutes
