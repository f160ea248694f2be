import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { addBomLine, getBom, removeBomLine, updateBomLine } from '../domain/bom.js'
import { ifMatchSchema, ifMatchVersions } from './ifMatch.js'
import { actingFor } from './acting.js'
import { ErrorBody, PartNumber, PartNumberParams, authErrors } from './schemas.js'

/** Decimals allowed (2.5 m of cable); zero and negatives are not a quantity. */
const Quantity = Type.Number({ exclusiveMinimum: 0, maximum: 1e9 })

/** Where the child sits on the board or drawing (R1, C12, U3.A); order is kept as sent. */
const ReferenceDesignators = Type.Array(
  Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' }),
  { maxItems: 1000, uniqueItems: true },
)

const BomChild = Type.Object({
  part_number: Type.String(),
  description: Type.String(),
  item_type: Type.String(),
  quantity: Type.Number(),
  reference_designators: Type.Array(Type.String()),
})

/** A conflict: a duplicate line, or `bom_cycle` with the path the line would close. */
const BomConflict = Type.Object({
  error: Type.String(),
  message: Type.String(),
  cycle: Type.Optional(Type.Array(Type.String())),
})

const BomLineParams = Type.Object({ pn: PartNumber, child: PartNumber })

const bomRoutes: FastifyPluginAsync = async (plain) => {
  const app = plain.withTypeProvider<TypeBoxTypeProvider>()

  app.get(
    '/api/items/:pn/bom',
    {
      config: { role: 'viewer' },
      schema: {
        params: PartNumberParams,
        response: {
          200: Type.Object({ part_number: Type.String(), children: Type.Array(BomChild) }),
          400: ErrorBody,
          404: ErrorBody,
          ...authErrors,
        },
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
        body: Type.Object(
          {
            child: PartNumber,
            quantity: Quantity,
            reference_designators: Type.Optional(ReferenceDesignators),
          },
          { additionalProperties: false },
        ),
        headers: ifMatchSchema.headers,
        response: {
          201: BomChild,
          400: ErrorBody,
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
        body: Type.Object(
          {
            quantity: Type.Optional(Quantity),
            reference_designators: Type.Optional(ReferenceDesignators),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        headers: ifMatchSchema.headers,
        response: {
          200: BomChild,
          400: ErrorBody,
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
      await removeBomLine(actingFor(app, request), request.params.pn, request.params.child, ifMatch)
      return reply.code(204).send(null)
    },
  )
}

export default bomRoutes
