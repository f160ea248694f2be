import type { Queryable } from '../db/database.js'
import { PG_UNIQUE_VIOLATION, pgErrorCode } from '../db/database.js'
import { type ActingContext, mutate, mutateInOneStatement } from './context.js'
import { itemCreated, itemDeleted, itemUpdated } from '../events/catalogue.js'
import { AppError, conflict, notFound } from './errors.js'
import { propertyValueProblem } from './properties.js'
import type { Item, ItemPatch, ItemQuery, NewItem } from './schemas.js'

export { ITEM_TYPES, type ItemType } from './schemas.js'

export type { Item, ItemPatch, ItemQuery, NewItem } from './schemas.js'

interface ItemRow extends Omit<Item, 'created_at' | 'updated_at'> {
  created_at: Date | string
  updated_at: Date | string
}

const COLUMNS = `part_number, description, item_type, properties, version, created_at,
  created_by, updated_at, updated_by`

function toItem(row: ItemRow): Item {
  return {
    part_number: row.part_number,
    description: row.description,
    item_type: row.item_type,
    properties: row.properties,
    version: Number(row.version),
    created_at: new Date(row.created_at).toISOString(),
    created_by: row.created_by,
    updated_at: new Date(row.updated_at).toISOString(),
    updated_by: row.updated_by,
  }
}

async function findItem(db: Queryable, partNumber: string, lock = false): Promise<Item> {
  const { rows } = await db.query<ItemRow>(
    `SELECT ${COLUMNS} FROM items WHERE part_number = $1${lock ? ' FOR UPDATE' : ''}`,
    [partNumber],
  )
  const row = rows[0]
  if (!row) throw notFound(`item ${partNumber}`)
  return toItem(row)
}

export function getItem(db: Queryable, partNumber: string): Promise<Item> {
  return findItem(db, partNumber)
}

/**
 * The versions a write may apply to, from the client's If-Match; undefined when it sent none
 * (or `*`, which any existing item matches), so the write goes ahead as without a condition.
 */
export type IfMatch = readonly number[] | undefined

/**
 * Refuses a change (412, with the item as it is now) unless the item's `version` is one that
 * `ifMatch` accepts. Called under the item's row lock, so the version cannot move meanwhile.
 */
export async function requireVersion(
  tx: Queryable,
  partNumber: string,
  version: number,
  ifMatch: IfMatch,
): Promise<void> {
  if (ifMatch === undefined || ifMatch.includes(version)) return
  const current = await findItem(tx, partNumber)
  throw new AppError(
    412,
    'precondition_failed',
    `item ${partNumber} is at version ${current.version}, not ${ifMatch.join(' or ') || 'the one given'} (If-Match); nothing was changed`,
    { ETag: versionTag(current.version) },
    { current },
  )
}

/** An item version as an HTTP entity tag. */
export function versionTag(version: number): string {
  return `"${version}"`
}

/**
 * Each property value becomes a cell in an export, which the import must read back: a value
 * longer than a cell holds is refused here, before anything is written (README, "Bad input").
 */
function checkPropertyValues(properties: Record<string, unknown> | undefined): void {
  const found = properties && propertyValueProblem(properties)
  if (found) {
    throw new AppError(400, 'bad_request', `body/properties/${found.name} ${found.problem}`)
  }
}

/** The version a new item starts at. */
const FIRST_VERSION = 1

export async function createItem(ctx: ActingContext, input: NewItem): Promise<Item> {
  checkPropertyValues(input.properties)
  const fields = {
    part_number: input.part_number,
    description: input.description ?? '',
    item_type: input.item_type,
    properties: input.properties ?? {},
    version: FIRST_VERSION,
  }
  try {
    // Its event is known before the insert runs: one statement does both (issue 14).
    const [row] = await mutateInOneStatement<ItemRow>(
      ctx,
      {
        sql: `INSERT INTO items
                (part_number, description, item_type, properties, version, created_by, updated_by)
              VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING ${COLUMNS}`,
        params: [
          fields.part_number,
          fields.description,
          fields.item_type,
          JSON.stringify(fields.properties),
          fields.version,
          JSON.stringify(ctx.actor),
        ],
      },
      [itemCreated(fields, ctx.actor)],
    )
    return toItem(row as ItemRow)
  } catch (err) {
    if (pgErrorCode(err) === PG_UNIQUE_VIOLATION) {
      throw conflict(`item ${input.part_number} already exists`)
    }
    throw err
  }
}

/** JSON text with object keys sorted at every level, so key order does not count. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  )
}

// Compared canonically: jsonb hands keys back in its own order (shortest first), so comparing
// plain JSON.stringify output made a client resending its own properties emit a spurious
// item.updated although nothing changed.
export function sameJson(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b)
}

/**
 * Applies the given fields; `properties`, when given, replaces the whole property set. Emits
 * `item.updated` with exactly the fields whose value changed, and nothing when none did.
 */
export async function updateItem(
  ctx: ActingContext,
  partNumber: string,
  patch: ItemPatch,
  ifMatch?: IfMatch,
): Promise<Item> {
  checkPropertyValues(patch.properties)
  return mutate(ctx, async (tx, emit) => {
    const current = await findItem(tx, partNumber, true)
    await requireVersion(tx, partNumber, current.version, ifMatch)
    const changed: ItemPatch = {}
    if (patch.description !== undefined && patch.description !== current.description) {
      changed.description = patch.description
    }
    if (patch.item_type !== undefined && patch.item_type !== current.item_type) {
      changed.item_type = patch.item_type
    }
    if (patch.properties !== undefined && !sameJson(patch.properties, current.properties)) {
      changed.properties = patch.properties
    }
    if (Object.keys(changed).length === 0) return current
    const { rows } = await tx.query<ItemRow>(
      `UPDATE items SET
         description = coalesce($2, description),
         item_type = coalesce($3, item_type),
         properties = coalesce($4::jsonb, properties),
         version = version + 1,
         updated_at = now(),
         updated_by = $5
       WHERE part_number = $1 RETURNING ${COLUMNS}`,
      [
        partNumber,
        changed.description ?? null,
        changed.item_type ?? null,
        changed.properties === undefined ? null : JSON.stringify(changed.properties),
        JSON.stringify(ctx.actor),
      ],
    )
    const item = toItem(rows[0] as ItemRow)
    emit(itemUpdated(partNumber, item.version, ctx.actor, changed))
    return item
  })
}

/**
 * Deletes an item with its revisions and its own BOM lines, then removes their files from
 * storage; refuses (409) while it is a child in any BOM. The row lock comes first: adding a BOM
 * line holds a key-share lock on its child, so the check sees every line that could still stop
 * the delete. Returns the keys of files storage failed to remove (the item is gone all the
 * same), for the caller to log.
 */
export async function deleteItem(
  ctx: ActingContext,
  partNumber: string,
  ifMatch?: IfMatch,
): Promise<string[]> {
  const fileKeys = await mutate(ctx, async (tx, emit) => {
    const { version } = await findItem(tx, partNumber, true)
    await requireVersion(tx, partNumber, version, ifMatch)
    // The message names the first few parents and counts the rest.
    const shown = 10
    const { rows: parents } = await tx.query<{ parent: string; total: number }>(
      `SELECT parent, count(*) OVER ()::int AS total FROM bom_lines WHERE child = $1
       ORDER BY parent LIMIT $2`,
      [partNumber, shown],
    )
    if (parents.length > 0) {
      const total = parents[0]?.total ?? parents.length
      const more = total > parents.length ? ` and ${total - parents.length} more` : ''
      throw conflict(
        `item ${partNumber} is used in the BOM of ${parents.map((p) => p.parent).join(', ')}${more}`,
      )
    }
    const { rows: files } = await tx.query<{ file_key: string }>(
      'SELECT file_key FROM revisions WHERE part_number = $1 AND file_key IS NOT NULL',
      [partNumber],
    )
    await tx.query('DELETE FROM items WHERE part_number = $1', [partNumber])
    emit(itemDeleted(partNumber, version, ctx.actor))
    return files.map((f) => f.file_key)
  })
  const removals = await Promise.allSettled(fileKeys.map((key) => ctx.storage.remove(key)))
  return fileKeys.filter((_key, i) => removals[i]?.status === 'rejected')
}

/** The cursor is the last part number of the previous page, opaque to clients. */
function decodeCursor(cursor: string): string {
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8')
  if (!decoded.startsWith('pn:')) throw new AppError(400, 'bad_request', 'invalid cursor')
  return decoded.slice(3)
}

function encodeCursor(partNumber: string): string {
  return Buffer.from(`pn:${partNumber}`, 'utf8').toString('base64url')
}

/** Lists items in part-number order, keyset-paginated so pages stay stable under writes. */
export async function listItems(
  db: Queryable,
  query: ItemQuery,
): Promise<{ items: Item[]; next_cursor: string | null }> {
  const where: string[] = []
  const params: unknown[] = []
  if (query.q) {
    params.push(`%${query.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`)
    where.push(`(part_number ILIKE $${params.length} OR description ILIKE $${params.length})`)
  }
  if (query.item_type) {
    params.push(query.item_type)
    where.push(`item_type = $${params.length}`)
  }
  if (query.cursor) {
    params.push(decodeCursor(query.cursor))
    where.push(`part_number > $${params.length}`)
  }
  params.push(query.limit + 1)
  const { rows } = await db.query<ItemRow>(
    `SELECT ${COLUMNS} FROM items ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY part_number LIMIT $${params.length}`,
    params,
  )
  const items = rows.slice(0, query.limit).map(toItem)
  const last = items[items.length - 1]
  return {
    items,
    next_cursor: rows.length > query.limit && last ? encodeCursor(last.part_number) : null,
  }
}
