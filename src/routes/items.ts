import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import {
  createItem,
  deleteItem,
  getItem,
  listItems,
  updateItem,
  versionTag,
} from '../domain/items.js'
import { Item, ItemPage, ItemPatch, ItemQuery, NewItem } from '../domain/schemas.js'
import { actingFor } from './acting.js'
import { ifMatchSchema, ifMatchVersions } from './ifMatch.js'
import { ErrorBody, PartNumberParams, authErrors, bodyErrors } from './schemas.js'

const itemRoutes: FastifyPluginAsync = async (plain) => {
  const app = plain.withTypeProvider<TypeBoxTypeProvider>()

  app.get(
    '/api/items',
    {
      config: { role: 'viewer' },
      schema: {
        querystring: ItemQuery,
        response: { 200: ItemPage, 400: ErrorBody, ...authErrors },
      },
    },
    async (request) => listItems(app.db, request.query),
  )

  app.post(
    '/api/items',
    {
      config: { role: 'editor' },
      schema: {
        body: NewItem,
        response: { 201: Item, ...bodyErrors, 409: ErrorBody, ...authErrors },
      },
    },
    async (request, reply) => {
      const item = await createItem(actingFor(app, request), request.body)
      return reply.code(201).header('ETag', versionTag(item.version)).send(item)
    },
  )

  app.get(
    '/api/items/:pn',
    {
      config: { role: 'viewer' },
      schema: {
        params: PartNumberParams,
        response: { 200: Item, 400: ErrorBody, 404: ErrorBody, ...authErrors },
      },
    },
    async (request, reply) => {
      const item = await getItem(app.db, request.params.pn)
      return reply.header('ETag', versionTag(item.version)).send(item)
    },
  )

  app.patch(
    '/api/items/:pn',
    {
      config: { role: 'editor' },
      schema: {
        params: PartNumberParams,
        body: ItemPatch,
        headers: ifMatchSchema.headers,
        response: {
          200: Item,
          ...bodyErrors,
          404: ErrorBody,
          ...ifMatchSchema.response,
          ...authErrors,
        },
      },
    },
    async (request, reply) => {
      const { pn } = request.params
      const ifMatch = ifMatchVersions(request.headers['if-match'])
      const item = await updateItem(actingFor(app, request), pn, request.body, ifMatch)
      return reply.header('ETag', versionTag(item.version)).send(item)
    },
  )

  app.delete(
    '/api/items/:pn',
    {
      config: { role: 'editor' },
      schema: {
        params: PartNumberParams,
        headers: ifMatchSchema.headers,
        response: {
          204: Type.Null(),
          400: ErrorBody,
          404: ErrorBody,
          409: ErrorBody,
          ...ifMatchSchema.response,
          ...authErrors,
        },
      },
    },
    async (request, reply) => {
      const ifMatch = ifMatchVersions(request.headers['if-match'])
      const leftBehind = await deleteItem(actingFor(app, request), request.params.pn, ifMatch)
      if (leftBehind.length > 0) {
        request.log.warn({ keys: leftBehind }, 'item deleted; storage kept some of its files')
      }
      return reply.code(204).send(null)
    },
  )
}

export default itemRoutes
