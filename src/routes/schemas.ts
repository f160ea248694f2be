import { Type } from 'typebox'
import { ErrorBody, Item, ItemType, PartNumber, Properties } from '../domain/schemas.js'
import { ROLES } from '../domain/tokens.js'

export { ErrorBody, Item, ItemType, PartNumber, Properties }

export const PartNumberParams = Type.Object({ pn: PartNumber })

export const Role = Type.Union(ROLES.map((r) => Type.Literal(r)))

export const Mode = Type.Union([
  Type.Literal('normal'),
  Type.Literal('read-only'),
  Type.Literal('degraded'),
])

/** What the probes report: the mode, or `shutting-down` while the server drains. */
export const ServerMode = Type.Union([Mode, Type.Literal('shutting-down')])

/** Error responses every authenticated route can give. */
export const authErrors = { 401: ErrorBody, 403: ErrorBody }
