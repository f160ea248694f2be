import { Type } from 'typebox'
import { ITEM_TYPES, PART_NUMBER_PATTERN, PART_NUMBER_RULE } from '../domain/items.js'
import {
  FIXED_COLUMNS,
  MAX_PROPERTIES,
  MAX_PROPERTY_NAME_LENGTH,
  PROPERTY_NAME_PATTERN,
  PROPERTY_NAME_RULE,
} from '../domain/properties.js'
import { ROLES } from '../domain/tokens.js'

export const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() })

/** Part numbers travel in URL paths, so they are limited to URL-safe characters. */
export const PartNumber = Type.String({
  pattern: PART_NUMBER_PATTERN,
  description: PART_NUMBER_RULE,
})

export const ItemType = Type.Union(ITEM_TYPES.map((t) => Type.Literal(t)))

/** Free-form properties; names as src/domain/properties.ts allows them on every route. */
export const Properties = Type.Record(Type.String(), Type.Unknown(), {
  maxProperties: MAX_PROPERTIES,
  propertyNames: {
    maxLength: MAX_PROPERTY_NAME_LENGTH,
    pattern: PROPERTY_NAME_PATTERN,
    not: { enum: [...FIXED_COLUMNS] },
  },
  description: `property names: ${PROPERTY_NAME_RULE}`,
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
