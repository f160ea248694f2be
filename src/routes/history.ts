import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsync } from 'fastify'
import { Type } from 'typebox'
import { ItemHistory, itemHistory } from '../domain/history.js'
import { Cursor, PageLimit } from '../domain/schemas.js'
import { ErrorBody, PartNumberParams, authErrors } from './schemas.js'

const historyRoutes: FastifyPluginAsync = async (plain) => {
  const app = plain.withTypeProvider<TypeBoxTypeProvider>()

  app.get(
    '/api/items/:pn/history',
    {
      config: { role: 'viewer' },
      schema: {
        params: PartNumberParams,
        querystring: Type.Object(
          { limit: PageLimit, cursor: Type.Optional(Cursor) },
          { additionalProperties: false },
        ),
        response: { 200: ItemHistory, 400: ErrorBody, 404: ErrorBody, ...authErrors },
      },
    },
    async (request) => itemHistory(app.db, request.params.pn, request.query),
  )
}

export default historyRoutes
