import type { Queryable } from '../db/database.js'
import { csvLines } from '../sheets/csv.js'
import { OdsZip } from '../sheets/ods.js'
import type { Cell } from '../sheets/sheet.js'
import type { SheetPool } from '../workers/sheetPool.js'
import { FIXED_COLUMNS, propertyNameProblem } from './properties.js'
import { type Item, listItems } from './items.js'

/**
 * Every item as a sheet that the import reads back unchanged: part_number, description,
 * item_type, then one column per property name (sorted). Streamed page by page in part-number
 * order; nothing holds the whole table. Pages are separate reads, so an export taken during
 * writes may show some of them; revisions and BOMs are not part of it. The database is read on
 * this thread; each page is encoded (CSV text, or ODS XML deflated) in the sheet worker pool.
 */

const PAGE_SIZE = 500

/**
 * Every property name written today can be a column of its own (src/domain/properties.ts); a
 * database from before that rule may hold some that cannot (" x", "description"), which would
 * not come back as the same property. Those are left out of the export, and an import leaves
 * them alone.
 */
const isColumnName = (name: string) => propertyNameProblem(name) === null

async function propertyColumns(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ key: string }>(
    'SELECT DISTINCT jsonb_object_keys(properties) AS key FROM items',
  )
  return rows
    .map((r) => r.key)
    .filter(isColumnName)
    .sort()
}

async function* itemPages(db: Queryable): AsyncGenerator<Item[]> {
  let cursor: string | undefined
  do {
    const page = await listItems(db, { limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) })
    if (page.items.length > 0) yield page.items
    cursor = page.next_cursor ?? undefined
  } while (cursor)
}

function hasOwn(object: Record<string, unknown>, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(object, key)
}

/** CSV carries text only: strings as they are, every other value as its JSON. */
function csvValue(value: unknown): Cell {
  return typeof value === 'string' ? value : JSON.stringify(value)
}

/** ODS carries numbers and booleans typed; objects, arrays and null as JSON text. */
function odsValue(value: unknown): Cell {
  if (typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'number' && Number.isFinite(value)) return value
  return JSON.stringify(value)
}

function itemRow(item: Item, keys: readonly string[], value: (v: unknown) => Cell): Cell[] {
  return [
    item.part_number,
    item.description,
    item.item_type,
    ...keys.map((key) => (hasOwn(item.properties, key) ? value(item.properties[key]) : null)),
  ]
}

/** Every item as CSV text, a page of rows per chunk. */
export async function* exportItemsCsv(db: Queryable, pool: SheetPool): AsyncGenerator<string> {
  const keys = await propertyColumns(db)
  yield csvLines([[...FIXED_COLUMNS, ...keys]])
  for await (const items of itemPages(db)) {
    yield await pool.csvRows(items.map((item) => itemRow(item, keys, csvValue)))
  }
}

/** Every item as an ODS file, zip chunks as each page's piece of content.xml is added. */
export async function* exportItemsOds(db: Queryable, pool: SheetPool): AsyncGenerator<Uint8Array> {
  const keys = await propertyColumns(db)
  const chunks: Uint8Array[] = []
  const zip = new OdsZip((c) => chunks.push(c))
  let head: { columns: number; sheetName: string } | undefined = {
    columns: FIXED_COLUMNS.length + keys.length,
    sheetName: 'items',
  }
  let rows: Cell[][] = [[...FIXED_COLUMNS, ...keys]]
  let before = { crc: 0, size: 0 }
  for await (const items of itemPages(db)) {
    for (const item of items) rows.push(itemRow(item, keys, odsValue))
    const piece = await pool.odsPiece({ ...(head ? { head } : {}), rows, last: false, before })
    zip.piece(piece, false)
    ;[head, rows, before] = [undefined, [], { crc: piece.crc, size: piece.size }]
    yield* chunks.splice(0)
  }
  zip.piece(await pool.odsPiece({ ...(head ? { head } : {}), rows, last: true, before }), true)
  yield* chunks.splice(0)
}
