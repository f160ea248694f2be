import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { addBomLine, getBom, removeBomLine, updateBomLine } from '../domain/bom.js'
import { Bom, BomChild, BomConflict, BomLinePatch, NewBomLine } from '../domain/schemas.js'
import { actingFor } from './acting.js'
import { ifMatchSchema, ifMatchVersions } from './ifMatch.js'
import { ErrorBody, PartNumber, PartNumberParams, authErrors, bodyErrors } from './schemas.js'

const BomLineParams = Type.Object({ pn: PartNumber, child: PartNumber })

const bomRoutes: FastifyPluginAsync = async (plain) => {
  const app = plain.withTypeProvider<TypeBoxTypeProvider>()

  app.get(
    '/api/items/:pn/bom',
    {
      config: { role: 'viewer' },
      schema: {
        params: PartNumberParams,
        response: { 200: Bom, 400: ErrorBody, 404: ErrorBody, ...authErrors },
      },
    },
    async (request) => getBom(app.db, request.params.pn),
  )

  app.post(
    '/api/items/:pn/bom',
    {
      config: { role: 'editor' },
      schema: {
        params: PartNumberParams,
        body: NewBomLine,
        headers: ifMatchSchema.headers,
        response: {
          201: BomChild,
          ...bodyErrors,
          404: ErrorBody,
          409: BomConflict,
          ...ifMatchSchema.response,
          ...authErrors,
        },
      },
    },
    async (request, reply) => {
      const ifMatch = ifMatchVersions(request.headers['if-match'])
      const line = await addBomLine(
        actingFor(app, request),
        request.params.pn,
        request.body,
        ifMatch,
      )
      return reply.code(201).send(line)
    },
  )

  app.put(
    '/api/items/:pn/bom/:child',
    {
      config: { role: 'editor' },
      schema: {
        params: BomLineParams,
        body: BomLinePatch,
        headers: ifMatchSchema.headers,
        response: {
          200: BomChild,
          ...bodyErrors,
          404: ErrorBody,
          ...ifMatchSchema.response,
          ...authErrors,
        },
      },
    },
    async (request) => {
      const { pn, child } = request.params
      const ifMatch = ifMatchVersions(request.headers['if-match'])
      return updateBomLine(actingFor(app, request), pn, child, request.body, ifMatch)
    },
  )

  app.delete(
    '/api/items/:pn/bom/:child',
    {
      config: { role: 'editor' },
      schema: {
        params: BomLineParams,
        headers: ifMatchSchema.headers,
        response: {
          204: Type.Null(),
          400: ErrorBody,
          404: ErrorBody,
          ...ifMatchSchema.response,
          ...authErrors,
        },
      },
    },
    async (request, reply) => {
      const ifMatch = ifMatchVersions(request.headers['if-match'])
      const { pn, child } = request.params
      await removeBomLine(actingFor(app, request), pn, child, ifMatch)
      return reply.code(204).send(null)
    },
  )
}

export default bomRoutes
