import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import type { Queryable } from '../db/database.js'
import { PG_UNIQUE_VIOLATION, pgErrorCode } from '../db/database.js'
import { itemCreated, itemUpdated, type NewEvent } from '../events/catalogue.js'
import type { Cell } from '../sheets/sheet.js'
import type { SheetPool } from '../workers/sheetPool.js'
import { type ActingContext, mutate } from './context.js'
import { AppError, conflict } from './errors.js'
import { type CheckedImport, ImportErrors, type ImportRow, type SheetFormat } from './importRows.js'
import { type ItemType, sameJson } from './items.js'
import type { Actor, ImportAction, ImportResult } from './schemas.js'
import { MAX_PROPERTIES } from './properties.js'

/**
 * Creating and updating items from a sheet (CSV or ODS) in one transaction: all rows or none.
 *
 * Columns: part_number, description and item_type are required; every other named column is a
 * property. A property column is authoritative for its name: an empty cell removes the property,
 * a value sets it; properties without a column are left alone. CSV cells are text, so a cell that
 * spells an existing non-text value as JSON (`12`, `true`, `{"a":1}`) keeps that value, which
 * makes an export imported again change nothing.
 *
 * The file is read and checked in the sheet worker pool (importRows.ts); this thread then reads,
 * plans and writes the rows a slice at a time, yielding to the event loop between slices, so
 * that streams and probes are served while a large import runs (PGlite runs its queries on this
 * thread). The whole import keeps a time budget, import.timeout: past it, it is refused and its
 * transaction rolled back.
 */

export interface ImportOptions {
  dryRun: boolean
  /** import.timeout: the budget for reading, checking and writing the file. */
  timeoutMs: number
}

export interface ImportFile {
  format: SheetFormat
  /** Handed over to the worker: not usable after the call. */
  bytes: Uint8Array
}

function importTimedOut(timeoutMs: number): AppError {
  return new AppError(
    422,
    'import_timeout',
    `the import took longer than import.timeout (${timeoutMs} ms); nothing was imported. Split the file into smaller ones`,
  )
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
  columns: readonly string[],
  cells: readonly Cell[],
): Record<string, unknown> {
  // A Map, so that names like __proto__ stay plain keys.
  const next = new Map(Object.entries(existing))
  columns.forEach((name, index) => {
    const cell = cells[index] ?? null
    const had = next.has(name)
    if (cell === null || cell === '') {
      // An empty cell and an existing "" are the same thing in a sheet.
      if (!(had && next.get(name) === '')) next.delete(name)
    } else if (!(had && sameValue(cell, next.get(name)))) {
      next.set(name, cell)
    }
  })
  return Object.fromEntries(next)
}

interface ExistingItem {
  part_number: string
  description: string
  item_type: ItemType
  properties: Record<string, unknown>
  /** For a row to write: the version the item will have. */
  version: number
}

type Change = Partial<Pick<ExistingItem, 'description' | 'item_type' | 'properties'>>

interface Slices {
  /** Awaited between two slices: yields to the event loop and enforces the deadline. */
  between: () => Promise<void>
}

/** The items the file names that exist, locked (in part-number order) when `lock`. */
async function existingItems(
  db: Queryable,
  checked: CheckedImport,
  lock: boolean,
  slices: Slices,
): Promise<Map<string, ExistingItem>> {
  const existing = new Map<string, ExistingItem>()
  for (const slice of checked.partNumberSlices) {
    const { rows } = await db.query<ExistingItem>(
      `SELECT part_number, description, item_type, properties, version FROM items
       WHERE part_number = ANY($1::text[])${lock ? ' ORDER BY part_number FOR UPDATE' : ''}`,
      [JSON.parse(slice) as string[]],
    )
    for (const item of rows)
      existing.set(item.part_number, { ...item, version: Number(item.version) })
    await slices.between()
  }
  return existing
}

async function writeSlice(
  tx: Queryable,
  actor: Actor,
  creates: ExistingItem[],
  updates: ExistingItem[],
): Promise<void> {
  const columns = (items: ExistingItem[]) => [
    items.map((i) => i.part_number),
    items.map((i) => i.description),
    items.map((i) => i.item_type),
    items.map((i) => JSON.stringify(i.properties)),
  ]
  if (creates.length > 0) {
    await tx.query(
      `INSERT INTO items (part_number, description, item_type, properties, created_by, updated_by)
       SELECT *, $5::jsonb, $5::jsonb FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])`,
      [...columns(creates), JSON.stringify(actor)],
    )
  }
  if (updates.length > 0) {
    await tx.query(
      `UPDATE items AS i SET description = u.description, item_type = u.item_type,
         properties = u.properties, version = i.version + 1, updated_at = now(),
         updated_by = $5::jsonb
       FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])
         AS u (part_number, description, item_type, properties)
       WHERE i.part_number = u.part_number`,
      [...columns(updates), JSON.stringify(actor)],
    )
  }
}

/**
 * Plans every row against the existing items, slice by slice in file order, and (unless a dry
 * run) writes each slice as it goes and emits its events. A row that would end with too many
 * properties rejects the file, after every row has been looked at, so that all are listed.
 */
async function applyRows(
  db: Queryable,
  checked: CheckedImport,
  options: {
    dryRun: boolean
    slices: Slices
    /** Who imports; the events and the rows written record it. */
    actor: Actor
    emit?: (event: NewEvent) => void
  },
): Promise<ImportResult> {
  const { dryRun, slices, actor, emit } = options
  const existing = await existingItems(db, checked, !dryRun, slices)
  const result: ImportResult = { dry_run: dryRun, created: 0, updated: 0, unchanged: 0, items: [] }
  const errors = new ImportErrors()
  for (const slice of checked.rowSlices) {
    const creates: ExistingItem[] = []
    const updates: ExistingItem[] = []
    for (const row of JSON.parse(slice) as ImportRow[]) {
      const current = existing.get(row.part_number)
      const properties = applyProperties(
        current?.properties ?? {},
        checked.propertyNames,
        row.properties,
      )
      const count = Object.keys(properties).length
      if (count > MAX_PROPERTIES) {
        errors.add({
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
        version: current ? current.version + 1 : 1,
      }
      let action: ImportAction
      if (!current) {
        action = 'created'
        creates.push(next)
        emit?.(itemCreated(next, actor))
      } else {
        const changed: Change = {}
        if (!sameJson(next.description, current.description)) changed.description = next.description
        if (!sameJson(next.item_type, current.item_type)) changed.item_type = next.item_type
        if (!sameJson(next.properties, current.properties)) changed.properties = next.properties
        if (Object.keys(changed).length > 0) {
          action = 'updated'
          updates.push(next)
          emit?.(itemUpdated(next.part_number, next.version, actor, changed))
        } else action = 'unchanged'
      }
      result[action]++
      result.items.push({ row: row.row, part_number: row.part_number, action })
    }
    // Once the file is rejected, nothing more is written; the transaction is rolled back.
    if (!dryRun && errors.count === 0) await writeSlice(db, actor, creates, updates)
    await slices.between()
  }
  if (errors.count > 0) throw errors.rejection()
  return result
}

/**
 * Applies a sheet: creates the items it names that do not exist, updates those whose
 * description, type or property columns differ, and emits `item.created` / `item.updated` per
 * item in file order, all in one transaction. Any bad row rejects the whole sheet (400
 * `invalid_import` listing every bad cell); past import.timeout it is refused with 422
 * `import_timeout`. A dry run computes the same answer and writes nothing.
 */
export async function importItems(
  ctx: ActingContext,
  pool: SheetPool,
  file: ImportFile,
  options: ImportOptions,
): Promise<ImportResult> {
  const deadline = Date.now() + options.timeoutMs
  const reading = new AbortController()
  const timer = setTimeout(
    () => reading.abort(importTimedOut(options.timeoutMs)),
    options.timeoutMs,
  )
  let checked: CheckedImport
  try {
    checked = await pool.checkImport(file.format, file.bytes, reading.signal)
  } finally {
    clearTimeout(timer)
  }
  const slices: Slices = {
    between: async () => {
      await yieldToEventLoop()
      if (Date.now() > deadline) throw importTimedOut(options.timeoutMs)
    },
  }
  const { actor } = ctx
  if (options.dryRun) return applyRows(ctx.db, checked, { dryRun: true, slices, actor })
  try {
    return await mutate(
      ctx,
      (tx, emit) => applyRows(tx, checked, { dryRun: false, slices, actor, emit }),
      slices,
    )
  } catch (err) {
    if (pgErrorCode(err) === PG_UNIQUE_VIOLATION) {
      throw conflict(
        'an item in the file was created by another request meanwhile; retry the import',
      )
    }
    throw err
  }
}
