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

/**
 * Bounds on what a reader builds in memory and the work it does, whatever the file claims. They
 * are checked as the file is read, so a file is refused at the first row that crosses one.
 */
export interface SheetLimits {
  /** Most data rows (header excluded); blank rows count, as a spreadsheet shows them. */
  maxRows: number
  /** Most columns holding a value in any row. */
  maxColumns: number
  /** Longest cell, in characters (UTF-16 code units, as JavaScript counts). */
  maxCellLength: number
  /**
   * Largest content.xml of an ODS file, counted as it inflates, whatever the zip headers claim.
   * Well above what 100,000 rows take (about 25 MB for 10 columns).
   */
  maxContentBytes: number
}

export const DEFAULT_SHEET_LIMITS: SheetLimits = {
  maxRows: 100_000,
  maxColumns: 1024,
  maxCellLength: 65_536,
  maxContentBytes: 256 * 1024 * 1024,
}

/** Where a reader hands the header and each non-blank data row, as it reads them. */
export interface SheetSink {
  header(names: string[]): void
  row(row: SheetRow): void
}

/** A sink that keeps everything: the whole table in memory (tests, exports read back). */
export function collectSheet(): { sink: SheetSink; sheet: Sheet } {
  const sheet: Sheet = { header: [], rows: [] }
  return {
    sheet,
    sink: {
      header: (names) => {
        sheet.header = names
      },
      row: (row) => {
        sheet.rows.push(row)
      },
    },
  }
}

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

export function cellTooLong(limits: SheetLimits, row: number, column: number): SheetFormatError {
  return new SheetFormatError(
    `row ${row}, column ${columnLetter(column)}: a cell holds at most ${limits.maxCellLength} characters`,
  )
}
