import { Type } from 'typebox'
import { ITEM_TYPES, PART_NUMBER_PATTERN, PART_NUMBER_RULE } from '../domain/items.js'
import { ROLES } from '../domain/tokens.js'

export const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() })

/** Part numbers travel in URL paths, so they are limited to URL-safe characters. */
export const PartNumber = Type.String({
  pattern: PART_NUMBER_PATTERN,
  description: PART_NUMBER_RULE,
})

export const ItemType = Type.Union(ITEM_TYPES.map((t) => Type.Literal(t)))

export const Properties = Type.Record(Type.String({ maxLength: 128 }), Type.Unknown(), {
  maxProperties: 256,
})

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
