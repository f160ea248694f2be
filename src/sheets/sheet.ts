/**
 * The common shape of a table read from a CSV or ODS file. Pure: no Fastify, no database.
 */

/** One cell: text, a number, a boolean, or null for an empty cell. CSV cells are always text. */
export type Cell = string | number | boolean | null

export interface SheetRow {
  /** The row number a spreadsheet shows: the header is row 1, the first data row is row 2. */
  row: number
  /** Trailing empty cells may be missing. */
  cells: Cell[]
}

/**
 * A table: the names in its first row and its data rows. Rows whose cells are all empty are
 * left out (their numbers are skipped, so the others keep the numbers a spreadsheet shows).
 */
export interface Sheet {
  header: string[]
  rows: SheetRow[]
}

/** Bounds on what a reader builds in memory, whatever the file claims. */
export interface SheetLimits {
  /** Most data rows (header excluded). */
  maxRows: number
  /** Most columns holding a value in any row. */
  maxColumns: number
}

export const DEFAULT_SHEET_LIMITS: SheetLimits = { maxRows: 100_000, maxColumns: 1024 }

/** The file is not a readable CSV or ODS table; the message says why, for the uploader. */
export class SheetFormatError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SheetFormatError'
  }
}

export function isEmptyCell(cell: Cell | undefined): boolean {
  return cell === null || cell === undefined || cell === ''
}

/** A cell as text, as it would be written to CSV; numbers keep every digit of their value. */
export function cellText(cell: Cell | undefined): string {
  if (cell === null || cell === undefined) return ''
  if (typeof cell === 'string') return cell
  return String(cell)
}

/** The spreadsheet letter of a zero-based column index: 0 -> A, 25 -> Z, 26 -> AA. */
export function columnLetter(index: number): string {
  let name = ''
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) {
    name = String.fromCharCode(65 + ((n - 1) % 26)) + name
  }
  return name
}

export function tooManyRows(limits: SheetLimits): SheetFormatError {
  return new SheetFormatError(`the sheet has more than ${limits.maxRows} data rows`)
}

export function tooManyColumns(limits: SheetLimits): SheetFormatError {
  return new SheetFormatError(`the sheet has more than ${limits.maxColumns} columns`)
}
