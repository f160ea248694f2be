import { type Static, type TLiteral, type TSchemaOptions, type TUnion, Type } from 'typebox'
import {
  FIXED_COLUMNS,
  MAX_PROPERTIES,
  MAX_PROPERTY_NAME_LENGTH,
  MAX_PROPERTY_VALUE_LENGTH,
  PROPERTY_NAME_PATTERN,
  PROPERTY_NAME_RULE,
} from './properties.js'
import { MODES } from '../state/modeMachine.js'

/**
 * silo's entities and their limits, each written once as a TypeBox schema with its static type.
 * Routes validate and answer with these, the sheet import checks its cells against the same
 * limits, and the event catalogue (src/events/catalogue.ts) builds its payloads from them. This
 * module imports nothing but TypeBox, the property rule and the list of modes, so that the
 * catalogue can use it without pulling in the domain's database code.
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
  description:
    `at most ${MAX_PROPERTIES}; names: ${PROPERTY_NAME_RULE}; ` +
    `values: at most ${MAX_PROPERTY_VALUE_LENGTH} characters as text (JSON text if not a string)`,
})
export type Properties = Record<string, unknown>

/** How many results a page holds, on every paged list. */
export const PageLimit = Type.Integer({ minimum: 1, maximum: 1000, default: 100 })

/** Where a page starts: the previous page's `next_cursor`, opaque to clients. */
export const Cursor = Type.String({ maxLength: 200 })
export const NextCursor = Type.Union([Type.String(), Type.Null()], {
  description: 'pass it as cursor for the next page; null on the last',
})

/** The server mode (README, "Modes and signals"). */
export const Mode = literalUnion(MODES)

/** What the probes and the stream report: the mode, or `shutting-down` while the server drains. */
export const ServerMode = literalUnion([...MODES, 'shutting-down'])

export const ROLES = ['viewer', 'editor', 'admin'] as const
export const Role = literalUnion(ROLES)
export type Role = Static<typeof Role>

/** A moment, as the API writes it: ISO 8601 in UTC with milliseconds. */
export const Timestamp = Type.String({ format: 'date-time' })

/**
 * Who caused a change: the token it was made with (`token_id`, and its name then), or, with
 * `token_id` null, the server itself (`system`) or the command line (`cli:<os user>`).
 */
export const Actor = Type.Object(
  {
    token_id: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
    name: Type.String(),
  },
  { description: 'the token that made the change, or the server (system) or command line (cli)' },
)
export type Actor = Static<typeof Actor>

/** Who made a row: null for rows made before silo recorded it. */
const RecordedActor = Type.Union([Actor, Type.Null()])

export const Item = Type.Object({
  part_number: PartNumber,
  description: Type.String(),
  item_type: ItemType,
  properties: Type.Record(Type.String(), Type.Unknown()),
  version: Version,
  created_at: Timestamp,
  created_by: RecordedActor,
  updated_at: Timestamp,
  updated_by: RecordedActor,
})
export type Item = Static<typeof Item>

export const NewItem = Type.Object(
  {
    part_number: PartNumber,
    description: Type.Optional(Description),
    item_type: ItemType,
    properties: Type.Optional(Properties),
  },
  { additionalProperties: false },
)
export type NewItem = Static<typeof NewItem>

/** The fields to change; `properties`, when given, replaces the whole set. */
export const ItemPatch = Type.Object(
  {
    description: Type.Optional(Description),
    item_type: Type.Optional(ItemType),
    properties: Type.Optional(Properties),
  },
  { additionalProperties: false, minProperties: 1 },
)
export type ItemPatch = Static<typeof ItemPatch>

export const ItemQuery = Type.Object(
  {
    q: Type.Optional(
      Type.String({ maxLength: 200, description: 'part number or description holds it' }),
    ),
    item_type: Type.Optional(ItemType),
    limit: PageLimit,
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
)
export type ItemQuery = Static<typeof ItemQuery>

export const ItemPage = Type.Object({ items: Type.Array(Item), next_cursor: NextCursor })

/** A token as the admin API lists it; the secret itself is shown once, at creation. */
export const TokenInfo = Type.Object({
  id: Type.Integer({ minimum: 1 }),
  name: Type.String(),
  role: Role,
  /** The secret's first 10 characters, to tell tokens apart. */
  prefix: Type.String(),
  created_at: Timestamp,
  created_by: RecordedActor,
  expires_at: Type.Union([Timestamp, Type.Null()]),
})
export type TokenInfo = Static<typeof TokenInfo>

export const NewToken = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    role: Role,
    // A duration as in the config (`3600s`, `12h`, `30d`), or a moment: one or neither.
    expires_in: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
    expires_at: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
)

/** A new token, with its secret: shown in this answer only. */
export const CreatedToken = Type.Object({ ...TokenInfo.properties, token: Type.String() })
export type CreatedToken = Static<typeof CreatedToken>

/** The right a browser session holds (README "Web console"): its token's, until it ends. */
export const SessionInfo = Type.Object({
  token_id: Type.Integer({ minimum: 1 }),
  name: Type.String(),
  role: Role,
  expires_at: Type.Union([Timestamp, Type.Null()]),
})
export type SessionInfo = Static<typeof SessionInfo>

/** A token, pasted once, to trade for a session. */
export const SessionRequest = Type.Object(
  { token: Type.String({ minLength: 1, maxLength: 200 }) },
  { additionalProperties: false },
)

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

/** A BOM line as GET shows it: with the child's own description and type. */
export const BomChild = Type.Object({
  ...BomLine.properties,
  description: Type.String(),
  item_type: ItemType,
})
export type BomChild = Static<typeof BomChild>

export const Bom = Type.Object({ part_number: PartNumber, children: Type.Array(BomChild) })
export type Bom = Static<typeof Bom>

export const NewBomLine = Type.Object(
  {
    child: PartNumber,
    quantity: Quantity,
    reference_designators: Type.Optional(ReferenceDesignators),
  },
  { additionalProperties: false },
)
export type NewBomLine = Static<typeof NewBomLine>

export const BomLinePatch = Type.Object(
  {
    quantity: Type.Optional(Quantity),
    reference_designators: Type.Optional(ReferenceDesignators),
  },
  { additionalProperties: false, minProperties: 1 },
)
export type BomLinePatch = Static<typeof BomLinePatch>

/** A conflict: a duplicate line, or `bom_cycle` with the path the line would close. */
export const BomConflict = Type.Object({
  ...ErrorBody.properties,
  cycle: Type.Optional(Type.Array(PartNumber)),
})

export const Comment = Type.String({ maxLength: MAX_COMMENT_LENGTH })

/** What storage holds of a revision's file. */
export const RevisionFile = Type.Object({
  name: Type.String(),
  size: Type.Integer({ minimum: 0 }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  content_type: Type.String(),
})
export type RevisionFile = Static<typeof RevisionFile>

/** A revision never changes once made, so it records only who made it. */
export const Revision = Type.Object({
  part_number: PartNumber,
  revision_number: Type.Integer({ minimum: 1 }),
  comment: Type.String(),
  properties: Type.Record(Type.String(), Type.Unknown()),
  file: Type.Union([RevisionFile, Type.Null()]),
  created_at: Timestamp,
  created_by: RecordedActor,
})
export type Revision = Static<typeof Revision>

/** A revision's fields, as JSON or as the fields of a multipart upload. */
export const RevisionInput = Type.Object(
  { comment: Type.Optional(Comment), properties: Type.Optional(Properties) },
  { additionalProperties: false },
)
export type RevisionInput = Static<typeof RevisionInput>

export const ImportAction = literalUnion(['created', 'updated', 'unchanged'])
export type ImportAction = Static<typeof ImportAction>

/** What an import did (or, in a dry run, would do), row by row in file order. */
export const ImportResult = Type.Object({
  dry_run: Type.Boolean(),
  created: Type.Integer({ minimum: 0 }),
  updated: Type.Integer({ minimum: 0 }),
  unchanged: Type.Integer({ minimum: 0 }),
  items: Type.Array(
    Type.Object({
      row: Type.Integer({ minimum: 2, description: 'as a spreadsheet shows it; 1 is the header' }),
      part_number: PartNumber,
      action: ImportAction,
    }),
  ),
})
export type ImportResult = Static<typeof ImportResult>

/** One bad cell of a rejected import. */
export const ImportError = Type.Object({
  row: Type.Integer({ minimum: 1, description: 'as a spreadsheet shows it; 1 is the header' }),
  column: Type.String({ description: 'its name, or `column F` for one without' }),
  reason: Type.String(),
})
export type ImportError = Static<typeof ImportError>

/** A rejected import: `errors` lists every bad cell (the first 1,000), nothing was written. */
export const ImportRejection = Type.Object({
  ...ErrorBody.properties,
  errors: Type.Optional(Type.Array(ImportError)),
})
