import { isUtf8 } from 'node:buffer'
import { finished } from 'node:stream/promises'
import { CsvError, type Info, Parser } from 'csv-parse'
import { stringify } from 'csv-stringify/sync'
import { guardFormula, unguardFormula } from './formulaGuard.js'
import {
  type Cell,
  cellText,
  cellTooLong,
  collectSheet,
  DEFAULT_SHEET_LIMITS,
  isEmptyCell,
  type Sheet,
  type SheetLimits,
  type SheetSink,
  SheetFormatError,
  tooManyColumns,
  tooManyRows,
} from './sheet.js'

/** How much of the file csv-parse is given at a time; the row count is checked after each. */
const PARSE_CHUNK = 64 * 1024

/**
 * The spreadsheet row a record or error is at. Empty lines are skipped by csv-parse without
 * building a record (they cost next to nothing), but a spreadsheet still shows them as rows.
 */
function rowNumber(info: Pick<Info, 'records' | 'empty_lines'>): number {
  return info.records + info.empty_lines
}

/**
 * Reads a comma-separated UTF-8 file (RFC 4180 quoting, any of CRLF/LF/CR line ends, an optional
 * byte-order mark) into `sink`, row by row. Record n is row n, as a spreadsheet opening the file
 * would number it, so a quoted cell spanning several lines still counts as one row.
 *
 * The limits are checked as csv-parse produces records, and the row count (blank lines
 * included) after every chunk, so a file is refused at the row that crosses one. A record's
 * buffer is bounded too (16 cells of the longest length), so one huge cell is refused while it
 * is being read rather than after it has been built.
 */
export async function readCsvInto(
  input: Uint8Array,
  sink: SheetSink,
  limits: SheetLimits = DEFAULT_SHEET_LIMITS,
): Promise<void> {
  // A file saved in a legacy code page must not turn into silent mojibake.
  if (!isUtf8(input)) {
    throw new SheetFormatError('the file is not UTF-8 text; save it as "CSV UTF-8"')
  }
  const maxRecordSize = 16 * limits.maxCellLength
  const onRecord = (cells: string[], row: number): null => {
    if (row - 1 > limits.maxRows) throw tooManyRows(limits)
    if (cells.length > limits.maxColumns) throw tooManyColumns(limits)
    for (let i = 0; i < cells.length; i++) {
      if ((cells[i] as string).length > limits.maxCellLength) throw cellTooLong(limits, row, i)
      cells[i] = unguardFormula(cells[i] as string)
    }
    if (row === 1) {
      if (cells.length === 1 && /[;\t]/.test(cells[0] ?? '')) {
        throw new SheetFormatError(
          'the header row has a single column containing ";" or a tab: save the file with commas as separators',
        )
      }
      sink.header(cells)
    } else if (!cells.every((c) => c === '')) {
      sink.row({ row, cells })
    }
    // Nothing is kept by the parser: the sink has the row.
    return null
  }
  const parser = new Parser({
    bom: true,
    relax_column_count: true,
    record_delimiter: ['\r\n', '\n', '\r'],
    skip_empty_lines: true,
    max_record_size: maxRecordSize,
    on_record: (record: string[], info) => onRecord(record, rowNumber(info)),
  })
  // Errors reach the write callback or finished() below; the event itself is not needed.
  parser.on('error', () => {})
  const write = (chunk: Uint8Array) =>
    new Promise<void>((resolve, reject) =>
      parser.write(chunk, (err) => (err ? reject(err) : resolve())),
    )
  try {
    for (let at = 0; at < input.length; at += PARSE_CHUNK) {
      await write(input.subarray(at, at + PARSE_CHUNK))
      if (rowNumber(parser.info) - 1 > limits.maxRows) throw tooManyRows(limits)
    }
    parser.end()
    await finished(parser, { readable: false })
  } catch (err) {
    parser.destroy()
    if (!(err instanceof CsvError)) throw err
    const info = err as CsvError & Partial<Info>
    const row =
      typeof info.records === 'number'
        ? rowNumber({ records: info.records, empty_lines: info.empty_lines ?? 0 }) + 1
        : undefined
    if (err.code === 'CSV_MAX_RECORD_SIZE') {
      throw new SheetFormatError(
        `row ${row ?? '?'} is longer than ${maxRecordSize} characters; a cell holds at most ${limits.maxCellLength}`,
      )
    }
    throw new SheetFormatError(`not valid CSV${row ? ` in row ${row}` : ''}: ${err.message}`)
  }
}

/** The whole file as a table in memory. */
export async function readCsv(
  input: Uint8Array,
  limits: SheetLimits = DEFAULT_SHEET_LIMITS,
): Promise<Sheet> {
  const { sink, sheet } = collectSheet()
  await readCsvInto(input, sink, limits)
  return sheet
}

// Cells with leading or trailing white space are quoted too, for readers that trim bare cells.
const STRINGIFY_OPTIONS = { quoted_match: /^\s|\s$/ }

/**
 * Rows as CSV text (LF line ends, quotes only where needed). Cells are written as text: null is
 * an empty cell, numbers and booleans their plain text, and text a spreadsheet would run as a
 * formula guarded (see formulaGuard.ts).
 */
export function csvLines(rows: readonly (readonly Cell[])[]): string {
  if (rows.length === 0) return ''
  return stringify(
    rows.map((cells) => cells.map((c) => (isEmptyCell(c) ? '' : guardFormula(cellText(c))))),
    STRINGIFY_OPTIONS,
  )
}
