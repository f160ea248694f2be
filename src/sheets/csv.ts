import { parse } from 'csv-parse/sync'
import { stringify } from 'csv-stringify/sync'
import {
  type Cell,
  cellText,
  DEFAULT_SHEET_LIMITS,
  isEmptyCell,
  type Sheet,
  type SheetLimits,
  SheetFormatError,
  tooManyColumns,
  tooManyRows,
} from './sheet.js'

/**
 * Reads a comma-separated UTF-8 file (RFC 4180 quoting, any of CRLF/LF/CR line ends, an optional
 * byte-order mark). Record n is row n, as a spreadsheet opening the file would number it, so a
 * quoted cell spanning several lines still counts as one row.
 */
export function readCsv(input: Uint8Array, limits: SheetLimits = DEFAULT_SHEET_LIMITS): Sheet {
  let text: string
  try {
    // fatal: a file saved in a legacy code page must not turn into silent mojibake.
    text = new TextDecoder('utf-8', { fatal: true }).decode(input)
  } catch {
    throw new SheetFormatError('the file is not UTF-8 text; save it as "CSV UTF-8"')
  }
  let records: string[][]
  try {
    records = parse(text, {
      relax_column_count: true,
      record_delimiter: ['\r\n', '\n', '\r'],
    })
  } catch (err) {
    // `records` counts the records read before the bad one, so the bad one is the next row.
    const records = (err as { records?: unknown }).records
    const where = typeof records === 'number' ? ` in row ${records + 1}` : ''
    throw new SheetFormatError(`not valid CSV${where}: ${(err as Error).message}`)
  }
  const first = records[0] ?? []
  if (first.length === 1 && /[;\t]/.test(first[0] ?? '')) {
    throw new SheetFormatError(
      'the header row has a single column containing ";" or a tab: save the file with commas as separators',
    )
  }
  if (records.length - 1 > limits.maxRows) throw tooManyRows(limits)
  if (first.length > limits.maxColumns) throw tooManyColumns(limits)
  const sheet: Sheet = { header: first, rows: [] }
  for (let i = 1; i < records.length; i++) {
    const cells = records[i] as string[]
    if (cells.length > limits.maxColumns) throw tooManyColumns(limits)
    if (cells.every((c) => c === '')) continue
    sheet.rows.push({ row: i + 1, cells })
  }
  return sheet
}

// Cells with leading or trailing white space are quoted too, for readers that trim bare cells.
const STRINGIFY_OPTIONS = { quoted_match: /^\s|\s$/ }

/**
 * Rows as CSV text (LF line ends, quotes only where needed). Cells are written as text: null is
 * an empty cell, numbers and booleans their plain text.
 */
export function csvLines(rows: readonly (readonly Cell[])[]): string {
  if (rows.length === 0) return ''
  return stringify(
    rows.map((cells) => cells.map((c) => (isEmptyCell(c) ? '' : cellText(c)))),
    STRINGIFY_OPTIONS,
  )
}
