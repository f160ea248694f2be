import { readCsvInto } from '../sheets/csv.js'
import { readOdsInto } from '../sheets/ods.js'
import {
  type Cell,
  cellText,
  columnLetter,
  DEFAULT_SHEET_LIMITS,
  isEmptyCell,
  SheetFormatError,
  type SheetRow,
  type SheetSink,
} from '../sheets/sheet.js'
import { AppError } from './errors.js'
import { NUL_PROBLEM } from './jsonValues.js'
import {
  ITEM_TYPES,
  type ItemType,
  MAX_DESCRIPTION_LENGTH,
  PART_NUMBER_PATTERN,
  PART_NUMBER_RULE,
  type ImportError,
} from './schemas.js'
import { FIXED_COLUMNS, MAX_PROPERTIES, propertyNameProblem } from './properties.js'

/**
 * Reading an import file into checked rows: the header, then every cell of every row, as the
 * reader produces them. Pure and CPU-bound (no database): it runs in the sheet worker pool, and
 * hands the main thread the valid rows as JSON text in slices, which are cheap to pass between
 * threads and are parsed one slice at a time while the database part runs.
 */

export type SheetFormat = 'csv' | 'ods'

/** Longest error list in a rejection; the message gives the full count. */
const MAX_LISTED_ERRORS = 1000
/**
 * Rows per slice: what the database part reads, plans and writes between two yields. On PGlite
 * (which runs on the event loop's thread) inserting 1,000 rows takes 30-40 ms, 500 about half.
 */
export const SLICE_ROWS = 500

const PART_NUMBER = new RegExp(PART_NUMBER_PATTERN)
const ITEM_TYPE_SET: ReadonlySet<string> = new Set(ITEM_TYPES)

export function invalidImport(message: string, errors?: ImportError[]): AppError {
  return new AppError(400, 'invalid_import', message, {}, errors ? { errors } : {})
}

/**
 * The bad cells of a file, added in row order. Only the first MAX_LISTED_ERRORS are kept, so a
 * file of bad rows costs no more memory than a file of good ones.
 */
export class ImportErrors {
  private readonly listed: ImportError[] = []
  private total = 0
  private badRows = 0
  private lastRow = -1

  add(error: ImportError): void {
    if (error.row !== this.lastRow) {
      this.badRows++
      this.lastRow = error.row
    }
    this.total++
    if (this.listed.length < MAX_LISTED_ERRORS) this.listed.push(error)
  }

  get count(): number {
    return this.total
  }

  /** The 400 that rejects the whole file, listing its bad cells. */
  rejection(): AppError {
    const more =
      this.total > this.listed.length
        ? ` (the first ${this.listed.length} of ${this.total} errors are listed)`
        : ''
    return invalidImport(
      `${this.badRows} bad row${this.badRows === 1 ? '' : 's'}; nothing was imported${more}`,
      this.listed,
    )
  }
}

export interface PropertyColumn {
  name: string
  index: number
}

interface Columns {
  partNumber: number
  description: number
  itemType: number
  properties: PropertyColumn[]
  /** Indexes of the named columns; a value in any other column is an error. */
  named: ReadonlySet<number>
  /** Each column's name (trimmed), by index, for naming a bad cell. */
  names: readonly string[]
}

function headerMissing(): AppError {
  return invalidImport(
    `row 1 must name the columns: ${FIXED_COLUMNS.join(', ')}, then any property columns`,
    FIXED_COLUMNS.map((column) => ({ row: 1, column, reason: 'required column is missing' })),
  )
}

function readHeader(header: readonly string[]): Columns {
  const names = header.map((name) => name.trim())
  let width = names.length
  while (width > 0 && names[width - 1] === '') width--
  if (width === 0) throw headerMissing()
  const errors: ImportError[] = []
  const seen = new Map<string, number>()
  const properties: PropertyColumn[] = []
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
    const problem = name.includes('\u0000') ? NUL_PROBLEM : propertyNameProblem(name)
    if (problem) {
      errors.push({ row: 1, column: name, reason: problem })
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
  const partNumber = seen.get('part_number') as number
  const description = seen.get('description') as number
  const itemType = seen.get('item_type') as number
  return {
    partNumber,
    description,
    itemType,
    properties,
    named: new Set([partNumber, description, itemType, ...properties.map((p) => p.index)]),
    names,
  }
}

/** A checked data row: the item's fields, and its property cells in property-column order. */
export interface ImportRow {
  row: number
  part_number: string
  description: string
  item_type: ItemType
  properties: Cell[]
}

/** A checked file, as the worker hands it to the main thread. */
export interface CheckedImport {
  /** The property columns, in the order of every row's `properties`. */
  propertyNames: string[]
  rowCount: number
  /** The rows in file order, as JSON text of ImportRow[], SLICE_ROWS to a slice. */
  rowSlices: string[]
  /** Every part number, sorted (the order rows are locked in), as JSON text of string[]. */
  partNumberSlices: string[]
}

/** Checks each row as the reader hands it over, keeping only the named columns of good rows. */
class CheckingSink implements SheetSink {
  columns: Columns | undefined
  readonly errors = new ImportErrors()
  readonly rowSlices: string[] = []
  readonly partNumbers: string[] = []
  private slice: ImportRow[] = []
  private readonly firstRowOf = new Map<string, number>()

  header(names: string[]): void {
    this.columns = readHeader(names)
  }

  row({ row, cells }: SheetRow): void {
    const columns = this.columns
    if (!columns) throw headerMissing()
    const errors = this.errors
    const before = errors.count
    for (let index = 0; index < cells.length; index++) {
      const cell = cells[index]
      if (!columns.named.has(index) && !isEmptyCell(cell)) {
        errors.add({
          row,
          column: `column ${columnLetter(index)}`,
          reason: 'value in a column without a name in row 1',
        })
      } else if (typeof cell === 'string' && cell.includes('\u0000')) {
        errors.add({ row, column: columns.names[index] ?? '', reason: NUL_PROBLEM })
      }
    }

    const partNumber = cellText(cells[columns.partNumber])
    if (partNumber === '') {
      errors.add({ row, column: 'part_number', reason: 'is required' })
    } else if (!PART_NUMBER.test(partNumber)) {
      errors.add({ row, column: 'part_number', reason: `must be ${PART_NUMBER_RULE}` })
    } else {
      const first = this.firstRowOf.get(partNumber)
      if (first !== undefined) {
        errors.add({ row, column: 'part_number', reason: `repeats row ${first}` })
      } else this.firstRowOf.set(partNumber, row)
    }

    const description = cellText(cells[columns.description])
    if ([...description].length > MAX_DESCRIPTION_LENGTH) {
      errors.add({
        row,
        column: 'description',
        reason: `is longer than ${MAX_DESCRIPTION_LENGTH} characters`,
      })
    }

    const itemType = cellText(cells[columns.itemType])
    if (!ITEM_TYPE_SET.has(itemType)) {
      errors.add({
        row,
        column: 'item_type',
        reason: `${itemType === '' ? 'is required; ' : ''}must be one of ${ITEM_TYPES.join(', ')}`,
      })
    }

    // Once the file is known to be rejected, good rows are not kept.
    if (errors.count > 0) return
    if (errors.count === before) {
      this.partNumbers.push(partNumber)
      this.slice.push({
        row,
        part_number: partNumber,
        description,
        item_type: itemType as ItemType,
        properties: columns.properties.map((p) => cells[p.index] ?? null),
      })
      if (this.slice.length === SLICE_ROWS) this.flush()
    }
  }

  finish(): CheckedImport {
    const columns = this.columns
    if (!columns) throw headerMissing()
    if (this.errors.count > 0) throw this.errors.rejection()
    this.flush()
    const sorted = this.partNumbers.sort()
    const partNumberSlices: string[] = []
    for (let at = 0; at < sorted.length; at += SLICE_ROWS) {
      partNumberSlices.push(JSON.stringify(sorted.slice(at, at + SLICE_ROWS)))
    }
    return {
      propertyNames: columns.properties.map((p) => p.name),
      rowCount: sorted.length,
      rowSlices: this.rowSlices,
      partNumberSlices,
    }
  }

  private flush(): void {
    if (this.slice.length > 0) this.rowSlices.push(JSON.stringify(this.slice))
    this.slice = []
  }
}

/**
 * Reads and checks an uploaded file. Anything unreadable or any bad cell is a 400
 * `invalid_import` saying why (every bad cell listed); the limits of DEFAULT_SHEET_LIMITS are
 * applied as the file is read.
 */
export async function checkImport(format: SheetFormat, bytes: Uint8Array): Promise<CheckedImport> {
  const sink = new CheckingSink()
  try {
    if (format === 'csv') await readCsvInto(bytes, sink, DEFAULT_SHEET_LIMITS)
    else readOdsInto(bytes, sink, DEFAULT_SHEET_LIMITS)
  } catch (err) {
    if (err instanceof SheetFormatError) throw invalidImport(err.message)
    throw err
  }
  return sink.finish()
}
