import type { Queryable } from '../db/database.js'
import { PG_UNIQUE_VIOLATION, pgErrorCode } from '../db/database.js'
import { readCsv } from '../sheets/csv.js'
import { readOds } from '../sheets/ods.js'
import {
  type Cell,
  cellText,
  columnLetter,
  DEFAULT_SHEET_LIMITS,
  isEmptyCell,
  type Sheet,
  SheetFormatError,
} from '../sheets/sheet.js'
import { type DomainContext, mutate } from './context.js'
import { AppError, conflict } from './errors.js'
import {
  ITEM_TYPES,
  type ItemType,
  PART_NUMBER_PATTERN,
  PART_NUMBER_RULE,
  sameJson,
} from './items.js'

/**
 * Creating and updating items from a sheet (CSV or ODS) in one transaction: all rows or none.
 *
 * Columns: part_number, description and item_type are required; every other named column is a
 * property. A property column is authoritative for its name: an empty cell removes the property,
 * a value sets it; properties without a column are left alone. CSV cells are text, so a cell that
 * spells an existing non-text value as JSON (`12`, `true`, `{"a":1}`) keeps that value, which
 * makes an export imported again change nothing.
 */

export type SheetFormat = 'csv' | 'ods'

export const FIXED_COLUMNS = ['part_number', 'description', 'item_type'] as const

/** As for POST /api/items. */
const MAX_DESCRIPTION_LENGTH = 4096
const MAX_PROPERTY_NAME_LENGTH = 128
const MAX_PROPERTIES = 256
/** Longest error list in a rejection; the message gives the full count. */
const MAX_LISTED_ERRORS = 1000

const PART_NUMBER = new RegExp(PART_NUMBER_PATTERN)
const ITEM_TYPE_SET: ReadonlySet<string> = new Set(ITEM_TYPES)

export interface ImportError {
  /** Spreadsheet row number: 1 is the header. */
  row: number
  /** The column's name, or `column F` for a column without one. */
  column: string
  reason: string
}

export type ImportAction = 'created' | 'updated' | 'unchanged'

export interface ImportResult {
  dry_run: boolean
  created: number
  updated: number
  unchanged: number
  /** One entry per data row, in file order. */
  items: { row: number; part_number: string; action: ImportAction }[]
}

export interface ImportOptions {
  dryRun: boolean
}

function invalidImport(message: string, errors?: ImportError[]): AppError {
  return new AppError(400, 'invalid_import', message, {}, errors ? { errors } : {})
}

function rejectRows(errors: ImportError[]): AppError {
  const badRows = new Set(errors.map((e) => e.row)).size
  const listed = errors.slice(0, MAX_LISTED_ERRORS)
  const more =
    errors.length > listed.length
      ? ` (the first ${listed.length} of ${errors.length} errors are listed)`
      : ''
  return invalidImport(
    `${badRows} bad row${badRows === 1 ? '' : 's'}; nothing was imported${more}`,
    listed,
  )
}

/** Reads an uploaded file; anything unreadable is a 400 `invalid_import` saying why. */
export function readSheet(format: SheetFormat, bytes: Uint8Array): Sheet {
  try {
    return format === 'csv' ? readCsv(bytes, DEFAULT_SHEET_LIMITS) : readOds(bytes)
  } catch (err) {
    if (err instanceof SheetFormatError) throw invalidImport(err.message)
    throw err
  }
}

interface Columns {
  partNumber: number
  description: number
  itemType: number
  properties: { name: string; index: number }[]
  /** Columns after the last named one, or unnamed: a value there is an error. */
  width: number
}

function readHeader(header: readonly string[]): Columns {
  const names = header.map((name) => name.trim())
  let width = names.length
  while (width > 0 && names[width - 1] === '') width--
  if (width === 0) {
    throw invalidImport(
      `row 1 must name the columns: ${FIXED_COLUMNS.join(', ')}, then any property columns`,
      FIXED_COLUMNS.map((column) => ({ row: 1, column, reason: 'required column is missing' })),
    )
  }
  const errors: ImportError[] = []
  const seen = new Map<string, number>()
  const properties: Columns['properties'] = []
  for (let index = 0; index < width; index++) {
    const name = names[index] as string
    if (name === '') {
      errors.push({ row: 1, column: `column ${columnLetter(index)}`, reason: 'column has no name' })
      continue
    }
    const first = seen.get(name)
    if (first !== undefined) {
      errors.push({
        row: 1,
        column: name,
        reason: `duplicate column name (also column ${columnLetter(first)})`,
      })
      continue
    }
    seen.set(name, index)
    if ((FIXED_COLUMNS as readonly string[]).includes(name)) continue
    if ([...name].length > MAX_PROPERTY_NAME_LENGTH) {
      errors.push({
        row: 1,
        column: name,
        reason: `property names are at most ${MAX_PROPERTY_NAME_LENGTH} characters`,
      })
      continue
    }
    properties.push({ name, index })
  }
  for (const column of FIXED_COLUMNS) {
    if (!seen.has(column)) errors.push({ row: 1, column, reason: 'required column is missing' })
  }
  if (properties.length > MAX_PROPERTIES) {
    errors.push({
      row: 1,
      column: 'properties',
      reason: `${properties.length} property columns; at most ${MAX_PROPERTIES}`,
    })
  }
  if (errors.length > 0) {
    const listed = errors.slice(0, MAX_LISTED_ERRORS)
    throw invalidImport(
      `the header row is invalid: ${listed
        .slice(0, 5)
        .map((e) => `${e.column}: ${e.reason}`)
        .join('; ')}${errors.length > 5 ? '; …' : ''}`,
      listed,
    )
  }
  return {
    partNumber: seen.get('part_number') as number,
    description: seen.get('description') as number,
    itemType: seen.get('item_type') as number,
    properties,
    width,
  }
}

interface ImportRow {
  row: number
  part_number: string
  description: string
  item_type: ItemType
  cells: readonly Cell[]
}

/** Checks every cell of every row; returns the rows, or throws with every bad cell listed. */
function validateRows(sheet: Sheet, columns: Columns): ImportRow[] {
  const errors: ImportError[] = []
  const rows: ImportRow[] = []
  const firstRowOf = new Map<string, number>()
  const named = new Set([
    columns.partNumber,
    columns.description,
    columns.itemType,
    ...columns.properties.map((p) => p.index),
  ])
  for (const { row, cells } of sheet.rows) {
    const before = errors.length
    for (let index = 0; index < cells.length; index++) {
      if (!named.has(index) && !isEmptyCell(cells[index])) {
        errors.push({
          row,
          column: `column ${columnLetter(index)}`,
          reason: 'value in a column without a name in row 1',
        })
      }
    }

    const partNumber = cellText(cells[columns.partNumber])
    if (partNumber === '') {
      errors.push({ row, column: 'part_number', reason: 'is required' })
    } else if (!PART_NUMBER.test(partNumber)) {
      errors.push({ row, column: 'part_number', reason: `must be ${PART_NUMBER_RULE}` })
    } else {
      const first = firstRowOf.get(partNumber)
      if (first !== undefined) {
        errors.push({ row, column: 'part_number', reason: `repeats row ${first}` })
      } else firstRowOf.set(partNumber, row)
    }

    const description = cellText(cells[columns.description])
    if ([...description].length > MAX_DESCRIPTION_LENGTH) {
      errors.push({
        row,
        column: 'description',
        reason: `is longer than ${MAX_DESCRIPTION_LENGTH} characters`,
      })
    }

    const itemType = cellText(cells[columns.itemType])
    if (!ITEM_TYPE_SET.has(itemType)) {
      errors.push({
        row,
        column: 'item_type',
        reason: `${itemType === '' ? 'is required; ' : ''}must be one of ${ITEM_TYPES.join(', ')}`,
      })
    }

    if (errors.length === before) {
      rows.push({
        row,
        part_number: partNumber,
        description,
        item_type: itemType as ItemType,
        cells,
      })
    }
  }
  if (errors.length > 0) throw rejectRows(errors)
  return rows
}

/**
 * Whether a cell means the value a property already has: the same text, number or boolean, or
 * for a value that is not text, its JSON spelled in a text cell (how CSV carries it).
 */
function sameValue(cell: Exclude<Cell, null>, existing: unknown): boolean {
  if (typeof cell !== 'string') return cell === existing
  if (typeof existing === 'string') return cell === existing
  try {
    return sameJson(JSON.parse(cell), existing)
  } catch {
    return false
  }
}

/** The property set after the row's property columns have been applied to `existing`. */
function applyProperties(
  existing: Record<string, unknown>,
  columns: Columns['properties'],
  cells: readonly Cell[],
): Record<string, unknown> {
  // A Map, so that names like __proto__ stay plain keys.
  const next = new Map(Object.entries(existing))
  for (const { name, index } of columns) {
    const cell = cells[index] ?? null
    const had = next.has(name)
    if (cell === null || cell === '') {
      // An empty cell and an existing "" are the same thing in a sheet.
      if (!(had && next.get(name) === '')) next.delete(name)
    } else if (!(had && sameValue(cell, next.get(name)))) {
      next.set(name, cell)
    }
  }
  return Object.fromEntries(next)
}

interface ExistingItem {
  part_number: string
  description: string
  item_type: ItemType
  properties: Record<string, unknown>
}

type Change = Partial<Pick<ExistingItem, 'description' | 'item_type' | 'properties'>>

interface Plan {
  result: ImportResult
  creates: ExistingItem[]
  updates: { item: ExistingItem; changed: Change }[]
  /** Per row, in file order: what to emit. */
  order: (
    { kind: 'create'; item: ExistingItem } | { kind: 'update'; pn: string; changed: Change } | null
  )[]
}

async function planImport(
  db: Queryable,
  rows: ImportRow[],
  columns: Columns,
  options: { lock: boolean; dryRun: boolean },
): Promise<Plan> {
  const { rows: found } = await db.query<ExistingItem>(
    `SELECT part_number, description, item_type, properties FROM items
     WHERE part_number = ANY($1::text[])${options.lock ? ' ORDER BY part_number FOR UPDATE' : ''}`,
    [rows.map((r) => r.part_number)],
  )
  const existing = new Map(found.map((item) => [item.part_number, item]))
  const plan: Plan = {
    result: { dry_run: options.dryRun, created: 0, updated: 0, unchanged: 0, items: [] },
    creates: [],
    updates: [],
    order: [],
  }
  const errors: ImportError[] = []
  for (const row of rows) {
    const current = existing.get(row.part_number)
    const properties = applyProperties(current?.properties ?? {}, columns.properties, row.cells)
    const count = Object.keys(properties).length
    if (count > MAX_PROPERTIES) {
      errors.push({
        row: row.row,
        column: 'properties',
        reason: `the item would have ${count} properties; at most ${MAX_PROPERTIES}`,
      })
      continue
    }
    const next: ExistingItem = {
      part_number: row.part_number,
      description: row.description,
      item_type: row.item_type,
      properties,
    }
    let action: ImportAction
    if (!current) {
      action = 'created'
      plan.creates.push(next)
      plan.order.push({ kind: 'create', item: next })
    } else {
      const changed: Change = {}
      if (!sameJson(next.description, current.description)) changed.description = next.description
      if (!sameJson(next.item_type, current.item_type)) changed.item_type = next.item_type
      if (!sameJson(next.properties, current.properties)) changed.properties = next.properties
      if (Object.keys(changed).length > 0) {
        action = 'updated'
        plan.updates.push({ item: next, changed })
        plan.order.push({ kind: 'update', pn: next.part_number, changed })
      } else {
        action = 'unchanged'
        plan.order.push(null)
      }
    }
    plan.result[action]++
    plan.result.items.push({ row: row.row, part_number: row.part_number, action })
  }
  if (errors.length > 0) throw rejectRows(errors)
  return plan
}

async function writePlan(tx: Queryable, plan: Plan): Promise<void> {
  const columns = (items: ExistingItem[]) => [
    items.map((i) => i.part_number),
    items.map((i) => i.description),
    items.map((i) => i.item_type),
    items.map((i) => JSON.stringify(i.properties)),
  ]
  if (plan.creates.length > 0) {
    await tx.query(
      `INSERT INTO items (part_number, description, item_type, properties)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])`,
      columns(plan.creates),
    )
  }
  if (plan.updates.length > 0) {
    await tx.query(
      `UPDATE items AS i SET description = u.description, item_type = u.item_type,
         properties = u.properties, updated_at = now()
       FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])
         AS u (part_number, description, item_type, properties)
       WHERE i.part_number = u.part_number`,
      columns(plan.updates.map((u) => u.item)),
    )
  }
}

/**
 * Applies a sheet: creates the items it names that do not exist, updates those whose
 * description, type or property columns differ, and emits `item.created` / `item.updated` per
 * item in file order, all in one transaction. Any bad row rejects the whole sheet (400
 * `invalid_import` listing every bad cell). A dry run computes the same answer and writes nothing.
 */
export async function importItems(
  ctx: DomainContext,
  sheet: Sheet,
  options: ImportOptions,
): Promise<ImportResult> {
  const columns = readHeader(sheet.header)
  const rows = validateRows(sheet, columns)
  if (options.dryRun) {
    return (await planImport(ctx.db, rows, columns, { lock: false, dryRun: true })).result
  }
  try {
    return await mutate(ctx, async (tx, emit) => {
      const plan = await planImport(tx, rows, columns, { lock: true, dryRun: false })
      await writePlan(tx, plan)
      for (const step of plan.order) {
        if (step?.kind === 'create') {
          const { part_number, description, item_type, properties } = step.item
          emit({
            type: 'item.created',
            part_number,
            data: { part_number, description, item_type, properties },
          })
        } else if (step?.kind === 'update') {
          emit({
            type: 'item.updated',
            part_number: step.pn,
            data: { part_number: step.pn, ...step.changed },
          })
        }
      }
      return plan.result
    })
  } catch (err) {
    if (pgErrorCode(err) === PG_UNIQUE_VIOLATION) {
      throw conflict(
        'an item in the file was created by another request meanwhile; retry the import',
      )
    }
    throw err
  }
}
