import { type Static, type TLiteral, type TSchemaOptions, type TUnion, Type } from 'typebox'
import {
  FIXED_COLUMNS,
  MAX_PROPERTIES,
  MAX_PROPERTY_NAME_LENGTH,
  PROPERTY_NAME_PATTERN,
  PROPERTY_NAME_RULE,
} from './properties.js'

/**
 * silo's entities and their limits, each written once as a TypeBox schema with its static type.
 * Routes validate and answer with these, the sheet import checks its cells against the same
 * limits, and the event catalogue (src/events/catalogue.ts) builds its payloads from them. This
 * module imports nothing but TypeBox and the property rule, so that the catalogue can use it
 * without pulling in the domain's database code.
 */

/**
 * One of a few strings, as a union of literals (whose validation errors the server words as
 * "must be one of …"), typed from the list so that `Static` gives the string union.
 */
export function literalUnion<const T extends readonly string[]>(
  values: T,
  options?: TSchemaOptions,
): TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }> {
  const literals = values.map((value) => Type.Literal(value))
  return Type.Union(literals, options) as unknown as TUnion<{
    -readonly [K in keyof T]: TLiteral<T[K]>
  }>
}

export const ITEM_TYPES = ['part', 'assembly', 'drawing', 'document'] as const

/** Longest description, on every route that writes one (the API and the sheet imports). */
export const MAX_DESCRIPTION_LENGTH = 4096

/** Longest revision comment. */
export const MAX_COMMENT_LENGTH = 4096

/** Part numbers travel in URL paths, so they are limited to URL-safe characters. */
export const PART_NUMBER_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'
export const PART_NUMBER_RULE =
  'letters, digits, dot, underscore and dash; at most 64; no leading punctuation'

export const PartNumber = Type.String({
  pattern: PART_NUMBER_PATTERN,
  description: PART_NUMBER_RULE,
})

export const ItemType = literalUnion(ITEM_TYPES)
export type ItemType = Static<typeof ItemType>

/** An item's version: 1 when created, one more with every change (If-Match compares it). */
export const Version = Type.Integer({ minimum: 1 })

export const Description = Type.String({ maxLength: MAX_DESCRIPTION_LENGTH })

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
export type Properties = Record<string, unknown>

/** A moment, as the API writes it: ISO 8601 in UTC with milliseconds. */
export const Timestamp = Type.String({ format: 'date-time' })

export const Item = Type.Object({
  part_number: PartNumber,
  description: Type.String(),
  item_type: ItemType,
  properties: Type.Record(Type.String(), Type.Unknown()),
  version: Version,
  created_at: Timestamp,
  updated_at: Timestamp,
})
export type Item = Static<typeof Item>

/** The one shape of every refusal (README, "Bad input"); some carry more fields. */
export const ErrorBody = Type.Object({
  error: Type.String({ description: 'a code, such as not_found or bad_request' }),
  message: Type.String({ description: 'what was wrong, naming the field' }),
})
export type ErrorBody = Static<typeof ErrorBody>

/** A stale If-Match: nothing was changed; `current` is the item as it is. */
export const PreconditionFailed = Type.Object({
  ...ErrorBody.properties,
  current: Item,
})

/** Decimals allowed (2.5 m of cable); zero and negatives are not a quantity. */
export const Quantity = Type.Number({ exclusiveMinimum: 0, maximum: 1e9 })

/** Where the child sits on the board or drawing (R1, C12, U3.A); order is kept as sent. */
export const ReferenceDesignators = Type.Array(
  Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' }),
  { maxItems: 1000, uniqueItems: true },
)

/** One line of a parent's BOM, as the event carries it. */
export const BomLine = Type.Object({
  part_number: PartNumber,
  quantity: Quantity,
  reference_designators: ReferenceDesignators,
})
export type BomLine = Static<typeof BomLine>

export const Comment = Type.String({ maxLength: MAX_COMMENT_LENGTH })

/** What storage holds of a revision's file. */
export const RevisionFile = Type.Object({
  name: Type.String(),
  size: Type.Integer({ minimum: 0 }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  content_type: Type.String(),
})
export type RevisionFile = Static<typeof RevisionFile>
