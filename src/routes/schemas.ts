import { Type } from 'typebox'
import { ItemType, PartNumber, Properties } from '../domain/schemas.js'
import { ROLES } from '../domain/tokens.js'

export { ItemType, PartNumber, Properties }

export const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() })

export const Item = Type.Object({
  part_number: Type.String(),
  description: Type.String(),
  item_type: Type.String(),
  properties: Type.Record(Type.String(), Type.Unknown()),
  created_at: Type.String(),
  updated_at: Type.String(),
})

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
