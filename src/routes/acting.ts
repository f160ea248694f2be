import type { FastifyInstance, FastifyRequest } from 'fastify'
import { type ActingContext, actingAs } from '../domain/context.js'
import { tokenActor } from '../domain/tokens.js'

/** The domain context on behalf of the request's token, which the auth hook has checked. */
export function actingFor(app: FastifyInstance, request: FastifyRequest): ActingContext {
  return actingAs(app.domain, tokenActor(request.principal))
}
