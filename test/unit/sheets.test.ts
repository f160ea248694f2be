import { readFileSync } from 'node:fs'
import { crc32 } from 'node:zlib'
import { strToU8, unzipSync, zipSync } from 'fflate'
import { describe, expect, it } from 'vitest'
import { csvLines, readCsv, readCsvInto } from '../../src/sheets/csv.js'
import {
  deflateContentPiece,
  ODS_CONTENT_TAIL,
  ODS_MIME_TYPE,
  odsContentHead,
  odsRowsXml,
  OdsZip,
  readOds,
  readOdsInto,
  writeOds,
} from '../../src/sheets/ods.js'
import {
  type Cell,
  columnLetter,
  DEFAULT_SHEET_LIMITS,
  SheetFormatError,
} from '../../src/sheets/sheet.js'
import { claimingSize } from '../support/zipHeaders.js'

/**
 * The sheet readers and writers on plain values: CSV through csv-parse/csv-stringify, ODS through
 * fflate and saxes. test/fixtures/libreoffice.ods was saved by LibreOffice Calc 7.4 from
 * test/fixtures/libreoffice.fods (`soffice --headless --convert-to ods libreoffice.fods`).
 */

const utf8 = (text: string) => new TextEncoder().encode(text)

const NS =
  'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" ' +
  'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" ' +
  'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'

/** A minimal ODS around a hand-written office:spreadsheet body. */
function odsWith(spreadsheet: string, extra: Record<string, Uint8Array> = {}): Uint8Array {
  const content = `<?xml version="1.0" encoding="UTF-8"?><office:document-content ${NS} office:version="1.2"><office:body><office:spreadsheet>${spreadsheet}</office:spreadsheet></office:body></office:document-content>`
  return zipSync({
    mimetype: [strToU8(ODS_MIME_TYPE), { level: 0 }],
    'content.xml': strToU8(content),
    ...extra,
  })
}

const cell = (text: string) =>
  `<table:table-cell office:value-type="string"><text:p>${text}</text:p></table:table-cell>`
const row = (...cells: string[]) => `<table:table-row>${cells.join('')}</table:table-row>`

function formatError(fn: () => unknown): SheetFormatError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(SheetFormatError)
    return err as SheetFormatError
  }
  throw new Error('expected a SheetFormatError')
}

async function csvError(
  input: Uint8Array,
  limits = DEFAULT_SHEET_LIMITS,
): Promise<SheetFormatError> {
  const err = await readCsv(input, limits).then(
    () => new Error('expected a SheetFormatError'),
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(SheetFormatError)
  return err as SheetFormatError
}

/** Values a round trip must keep exactly. */
const TRICKY_TEXT = [
  'plain',
  'comma, inside',
  'a "quoted" word',
  'two\nlines',
  '  leading and trailing  ',
  'double  space',
  'Ø 12 mm – Schraube «M3»',
  'emoji 🔩🙂 and 日本語',
  '<xml> & "entities" \'too\'',
  ' ',
  '\nstarts with a newline',
  'tab\tinside',
]

describe('CSV reader', async () => {
  it('numbers rows as a spreadsheet does: header row 1, a quoted multi-line cell is one row, blank rows skipped', async () => {
    // Given a file with a multi-line cell, a blank line and a row of empty cells
    const csv = 'part_number,description,item_type\nP-1,"two\nlines",part\n\n,,\nP-2,x,drawing\n'
    // When it is read
    const sheet = await readCsv(utf8(csv))
    // Then the rows keep the numbers a spreadsheet shows, and the blank ones are left out
    expect(sheet.header).toEqual(['part_number', 'description', 'item_type'])
    expect(sheet.rows).toEqual([
      { row: 2, cells: ['P-1', 'two\nlines', 'part'] },
      { row: 5, cells: ['P-2', 'x', 'drawing'] },
    ])
  })

  it('accepts CRLF line ends and a UTF-8 byte-order mark, and keeps CRLF inside quoted cells', async () => {
    const sheet = await readCsv(utf8('\uFEFFa,b\r\n1,"x\r\ny"\r\n2,\r\n'))
    expect(sheet.header).toEqual(['a', 'b'])
    expect(sheet.rows).toEqual([
      { row: 2, cells: ['1', 'x\r\ny'] },
      { row: 3, cells: ['2', ''] },
    ])
  })

  it('keeps rows shorter or longer than the header as they are', async () => {
    const sheet = await readCsv(utf8('a,b,c\n1\n1,2,3,4\n'))
    expect(sheet.rows.map((r) => r.cells)).toEqual([['1'], ['1', '2', '3', '4']])
  })

  it('reads an empty file as an empty header', async () => {
    expect(await readCsv(new Uint8Array())).toEqual({ header: [], rows: [] })
  })

  it('rejects an unclosed quote, naming the row it opens in', async () => {
    const err = await csvError(utf8('a,b\n\n"open,1\n2,3\n'))
    expect(err.message).toMatch(/^not valid CSV in row 3: Quote Not Closed/)
  })

  it('rejects a stray quote inside a bare cell', async () => {
    const err = await csvError(utf8('a,b\nx"y,1\n'))
    expect(err.message).toMatch(/^not valid CSV in row 2: Invalid Opening Quote/)
  })

  it('rejects text that is not UTF-8 instead of guessing its code page', async () => {
    // "Ø" in Windows-1252 is the single byte 0xD8
    const latin1 = Uint8Array.from([...utf8('a,b\n'), 0xd8, ...utf8(',1\n')])
    expect((await csvError(latin1)).message).toMatch(/not UTF-8/)
  })

  it('says so when the separator is a semicolon', async () => {
    const err = await csvError(utf8('part_number;description;item_type\nP-1;x;part\n'))
    expect(err.message).toMatch(/commas as separators/)
  })

  it('refuses more rows or columns than the limits', async () => {
    const limits = { ...DEFAULT_SHEET_LIMITS, maxRows: 2, maxColumns: 3 }
    await expect(readCsv(utf8('a\n1\n2\n'), limits)).resolves.toBeDefined()
    expect((await csvError(utf8('a\n1\n2\n3\n'), limits)).message).toMatch(/more than 2 data rows/)
    expect((await csvError(utf8('a\n1,2,3,4\n'), limits)).message).toMatch(/more than 3 columns/)
  })
})

describe('CSV reader limits, checked as the file is read', () => {
  const small = { ...DEFAULT_SHEET_LIMITS, maxRows: 3, maxColumns: 3, maxCellLength: 8 }
  /** Text that makes csv-parse fail if the reader ever gets to it. */
  const brokenTail = '\n"never closed'

  it('refuses the row past the row limit without reading the rest of the file', async () => {
    const rows: number[] = []
    const input = utf8(`a\n1\n2\n3\n4${brokenTail}`)
    const err = await readCsvInto(input, { header: () => {}, row: (r) => rows.push(r.row) }, small)
      .then(() => undefined)
      .catch((e: unknown) => e as Error)
    expect(err?.message).toMatch(/more than 3 data rows/)
    expect(rows).toEqual([2, 3, 4])
  })

  it('counts blank lines as rows, so a file of empty lines is refused at the limit', async () => {
    // Given a header, then a million empty lines, then text that would not parse
    const input = utf8(`part_number\n${'\n'.repeat(1 << 20)}x${brokenTail}`)
    // When it is read, then the row limit refuses it before the broken text is reached
    expect((await csvError(input, { ...DEFAULT_SHEET_LIMITS, maxRows: 1000 })).message).toMatch(
      /more than 1000 data rows/,
    )
  })

  it('refuses a row with more columns than the limit, naming no later row', async () => {
    const err = await csvError(utf8(`a\n1\n1,2,3,4${brokenTail}`), small)
    expect(err.message).toBe('the sheet has more than 3 columns')
  })

  it('refuses a cell longer than the limit, naming its row and column', async () => {
    const err = await csvError(utf8(`a,b\n1,123456789${brokenTail}`), small)
    expect(err.message).toBe('row 2, column B: a cell holds at most 8 characters')
  })

  it('refuses a huge cell while it is still being read', async () => {
    // Given a quoted cell far longer than any row may be, never closed
    const input = utf8(`a\n"${'x'.repeat(10_000)}`)
    // Then the record buffer's bound refuses it, instead of the parser reaching the end
    expect((await csvError(input, small)).message).toBe(
      'row 2 is longer than 128 characters; a cell holds at most 8',
    )
  })
})

describe('CSV writer', () => {
  it('round-trips commas, quotes, newlines, spaces and non-ASCII text through the reader', async () => {
    // Given rows of tricky text, numbers, booleans and empty cells
    const header = ['part_number', 'text']
    const rows: Cell[][] = TRICKY_TEXT.map((text, i) => [`P-${i}`, text])
    // When they are written and read back
    const text = csvLines([header, ...rows])
    const sheet = await readCsv(utf8(text))
    // Then every cell comes back as written
    expect(sheet.header).toEqual(header)
    expect(sheet.rows.map((r) => r.cells)).toEqual(rows)
    expect(sheet.rows.map((r) => r.row)).toEqual(rows.map((_, i) => i + 2))
  })

  it('quotes only where needed, and cells with outer white space', () => {
    expect(csvLines([['a', 'b,c', 'say "x"', ' pad', 'ok']])).toBe(
      'a,"b,c","say ""x"""," pad",ok\n',
    )
  })

  it('writes null as an empty cell and numbers and booleans as their text', () => {
    expect(csvLines([[null, 1.5, true, false, 0, '']])).toBe(',1.5,true,false,0,\n')
  })
})

describe('ODS reader on a file saved by LibreOffice', () => {
  const fixture = readFileSync(new URL('../fixtures/libreoffice.ods', import.meta.url))

  it('reads the header and typed values of the first table only', () => {
    const sheet = readOds(fixture)
    expect(sheet.header).toEqual([
      'part_number',
      'description',
      'item_type',
      'mass_kg',
      'rohs',
      'tolerance',
      'price',
      'released',
      'note',
    ])
    expect(sheet.rows[0]).toEqual({
      row: 2,
      cells: [
        'LO-100',
        // two paragraphs, a span and a link flattened
        'Ø 12 mm – Schraube «M3» 🔩\nsecond line with a link',
        'part',
        0.125, // float
        true, // boolean
        0.05, // percentage: the value, not "5.00%"
        12.5, // currency
        '03/01/24 12:00 AM', // date: its text
        'say "hi", & <bye>',
      ],
    })
  })

  it('expands text:s spaces and leaves the annotation out of the cell', () => {
    const sheet = readOds(fixture)
    expect(sheet.rows[1]).toEqual({
      row: 3,
      cells: ['LO-101', '  two leading, double  space, trailing ', 'assembly', 3, false],
    })
  })

  it('expands repeated cells that hold a value, skips the blank row and keeps row numbers', () => {
    const sheet = readOds(fixture)
    expect(sheet.rows.map((r) => r.row)).toEqual([2, 3, 5])
    expect(sheet.rows[2]?.cells).toEqual([
      'LO-103',
      'document',
      'document',
      null,
      null,
      null,
      null,
      null,
      'after a gap',
    ])
  })

  it('does not expand the million formatted empty rows and 1024 columns LibreOffice writes', () => {
    // The fixture ends with number-rows-repeated="1048570" rows of 1024 repeated empty cells.
    const content = new TextDecoder().decode(
      unzipSync(fixture, { filter: (f) => f.name === 'content.xml' })['content.xml'],
    )
    expect(content).toContain('table:number-rows-repeated="1048570"')
    const started = performance.now()
    const sheet = readOds(fixture)
    expect(performance.now() - started).toBeLessThan(1000)
    expect(sheet.rows).toHaveLength(3)
    expect(Math.max(...sheet.rows.map((r) => r.cells.length))).toBe(9)
  })
})

describe('ODS reader on hand-written files', () => {
  it('expands a repeated row that holds values, numbering each copy', () => {
    const ods = odsWith(
      `<table:table>${row(cell('a'), cell('b'))}` +
        `<table:table-row table:number-rows-repeated="3">${cell('x')}<table:table-cell table:number-columns-repeated="2" office:value-type="float" office:value="7"><text:p>7</text:p></table:table-cell></table:table-row>` +
        `<table:table-row table:number-rows-repeated="2"><table:table-cell table:number-columns-repeated="5"/></table:table-row>` +
        `${row(cell('last'))}</table:table>`,
    )
    expect(readOds(ods)).toEqual({
      header: ['a', 'b'],
      rows: [
        { row: 2, cells: ['x', 7, 7] },
        { row: 3, cells: ['x', 7, 7] },
        { row: 4, cells: ['x', 7, 7] },
        { row: 7, cells: ['last'] },
      ],
    })
  })

  it('makes the rest of a repeated header row data rows', () => {
    const ods = odsWith(
      `<table:table><table:table-row table:number-rows-repeated="2">${cell('h')}</table:table-row></table:table>`,
    )
    expect(readOds(ods)).toEqual({ header: ['h'], rows: [{ row: 2, cells: ['h'] }] })
  })

  it('expands text:s with and without c, text:tab and text:line-break, and joins paragraphs with newlines', () => {
    const ods = odsWith(
      `<table:table>${row(cell('h'))}${row(
        '<table:table-cell office:value-type="string">' +
          '<text:p><text:s text:c="3"/>a<text:s/> b<text:tab/>c<text:line-break/>d</text:p>' +
          '<text:p/><text:p><text:span>e</text:span> <text:a>f</text:a></text:p>' +
          '</table:table-cell>',
      )}</table:table>`,
    )
    expect(readOds(ods).rows[0]?.cells).toEqual(['   a  b\tc\nd\n\ne f'])
  })

  it('collapses white space in the XML text itself, as ODF readers do', () => {
    const ods = odsWith(
      `<table:table>${row(cell('h'))}${row(cell('\r\n   a \t  b\r  c'))}</table:table>`,
    )
    expect(readOds(ods).rows[0]?.cells).toEqual(['a b c'])
  })

  it('reads float, percentage, currency and boolean values, and string-value over the text', () => {
    const typed = (attrs: string, text: string) =>
      `<table:table-cell ${attrs}><text:p>${text}</text:p></table:table-cell>`
    const ods = odsWith(
      `<table:table>${row(cell('h'))}${row(
        typed('office:value-type="float" office:value="-1.5E3"', '-1,500'),
        typed('office:value-type="percentage" office:value="0.25"', '25%'),
        typed('office:value-type="currency" office:currency="USD" office:value="9.99"', '$9.99'),
        typed('office:value-type="boolean" office:boolean-value="false"', 'FALSE'),
        typed('office:value-type="string" office:string-value="formula result"', 'shown'),
        typed('office:value-type="float" office:value="not a number"', 'n/a'),
        typed('office:value-type="time" office:time-value="PT01H00M00S"', '01:00'),
        typed('', 'untyped'),
        '<table:covered-table-cell/>',
        typed('office:value-type="string"', ''),
        typed('office:value-type="float" office:value="0"', '0'),
      )}</table:table>`,
    )
    expect(readOds(ods).rows[0]?.cells).toEqual([
      -1500,
      0.25,
      9.99,
      false,
      'formula result',
      'n/a',
      '01:00',
      'untyped',
      null,
      null,
      0,
    ])
  })

  it('reads only the first table, ignoring tables nested in cells', () => {
    const ods = odsWith(
      `<table:table>${row(cell('h'))}${row(
        `<table:table-cell office:value-type="string"><text:p>outer</text:p><table:table>${row(cell('inner'))}</table:table></table:table-cell>`,
      )}</table:table><table:table>${row(cell('second sheet'))}${row(cell('x'))}</table:table>`,
    )
    expect(readOds(ods)).toEqual({ header: ['h'], rows: [{ row: 2, cells: ['outer'] }] })
  })

  it('finds rows inside header-row and row-group elements', () => {
    const ods = odsWith(
      `<table:table><table:table-header-rows>${row(cell('h'))}</table:table-header-rows>` +
        `<table:table-row-group>${row(cell('a'))}</table:table-row-group></table:table>`,
    )
    expect(readOds(ods)).toEqual({ header: ['h'], rows: [{ row: 2, cells: ['a'] }] })
  })

  it('refuses a value repeated past the column limit, or a row repeated past the row limit', () => {
    const limits = { ...DEFAULT_SHEET_LIMITS, maxContentBytes: 1 << 20 }
    const wide = odsWith(
      `<table:table>${row(cell('h'))}<table:table-row><table:table-cell table:number-columns-repeated="100000" office:value-type="string"><text:p>x</text:p></table:table-cell></table:table-row></table:table>`,
    )
    expect(formatError(() => readOds(wide, limits)).message).toMatch(/more than 1024 columns/)
    const tall = odsWith(
      `<table:table>${row(cell('h'))}<table:table-row table:number-rows-repeated="1000000000">${cell('x')}</table:table-row></table:table>`,
    )
    expect(formatError(() => readOds(tall, limits)).message).toMatch(/more than 100000 data rows/)
  })
})

describe('ODS reader on bad files', () => {
  it('rejects a file that is not a zip archive', () => {
    expect(formatError(() => readOds(utf8('part_number,description\n'))).message).toMatch(
      /^not a valid ODS file: the zip archive cannot be read/,
    )
  })

  it('rejects a truncated zip archive', () => {
    const ods = writeOds(['a'], [['b']])
    expect(formatError(() => readOds(ods.subarray(0, ods.length - 30))).message).toMatch(
      /not a valid ODS file/,
    )
  })

  it('rejects a zip archive without content.xml, such as an .xlsx file', () => {
    const xlsx = zipSync({ '[Content_Types].xml': strToU8('<Types/>') })
    expect(formatError(() => readOds(xlsx)).message).toMatch(/has no content\.xml/)
  })

  it('rejects another OpenDocument type', () => {
    const odt = zipSync({
      mimetype: [strToU8('application/vnd.oasis.opendocument.text'), { level: 0 }],
      'content.xml': strToU8('<x/>'),
    })
    expect(formatError(() => readOds(odt)).message).toMatch(
      /document's type is application\/vnd\.oasis\.opendocument\.text/,
    )
  })

  it('rejects content.xml that is not well-formed XML, with its position', () => {
    const ods = odsWith(`<table:table>${row(cell('a'))}<table:table-row></table:table>`)
    expect(formatError(() => readOds(ods)).message).toMatch(
      /content\.xml is not well-formed XML \(content\.xml:1:\d+/,
    )
  })

  it('rejects a document without a table', () => {
    expect(formatError(() => readOds(odsWith(''))).message).toMatch(/holds no table/)
  })

  it('refuses to inflate a content.xml larger than the limit (a zip bomb)', () => {
    // 16 MiB of spaces compress to about 16 KiB
    const bomb = zipSync({
      mimetype: [strToU8(ODS_MIME_TYPE), { level: 0 }],
      'content.xml': [new Uint8Array(16 << 20).fill(0x20), { level: 1 }],
    })
    expect(bomb.length).toBeLessThan(1 << 17)
    const err = formatError(() =>
      readOds(bomb, { ...DEFAULT_SHEET_LIMITS, maxContentBytes: 1 << 20 }),
    )
    expect(err.message).toMatch(/content\.xml is 16777216 bytes uncompressed; at most 1048576/)
  })
})

describe('ODS reader against a lying zip', () => {
  it('reads what content.xml really holds, whatever size the headers claim', () => {
    // Given a real sheet whose zip headers claim content.xml is 200 bytes
    const ods = claimingSize(writeOds(['a'], [['x'.repeat(10_000)]]), 200)
    // When it is read, then all of it is there
    expect(readOds(ods).rows).toEqual([{ row: 2, cells: ['x'.repeat(10_000)] }])
  })

  it('stops inflating at the limit when the headers claim a small content.xml (a zip bomb)', () => {
    // Given 64 MiB of rows compressed to a few hundred KiB, whose headers claim 200 bytes
    const rowXml = odsRowsXml([['x']])
    const xml = odsContentHead(1) + rowXml.repeat(((64 << 20) / rowXml.length) | 0)
    const bomb = claimingSize(
      zipSync({
        mimetype: [strToU8(ODS_MIME_TYPE), { level: 0 }],
        'content.xml': [strToU8(xml), { level: 6 }],
      }),
      200,
    )
    expect(bomb.length).toBeLessThan(1 << 20)
    // When it is read with an 8 MiB budget and no row limit to stop it first
    const limits = { ...DEFAULT_SHEET_LIMITS, maxRows: 10_000_000, maxContentBytes: 8 << 20 }
    const rows: number[] = []
    const err = (() => {
      try {
        readOdsInto(bomb, { header: () => {}, row: (r) => rows.push(r.row) }, limits)
      } catch (e) {
        return e as Error
      }
      throw new Error('expected a SheetFormatError')
    })()
    // Then it is refused once 8 MiB have come out, having read only the rows in those
    expect(err).toBeInstanceOf(SheetFormatError)
    expect(err.message).toMatch(/content\.xml is more than 8388608 bytes uncompressed/)
    expect(rows.length).toBeGreaterThan(0)
    expect(rows.length).toBeLessThan((8 << 20) / rowXml.length)
  })

  it('refuses a text node larger than any cell, before it is gathered whole', () => {
    const spaces = zipSync({
      mimetype: [strToU8(ODS_MIME_TYPE), { level: 0 }],
      'content.xml': [
        Buffer.concat([Buffer.from(odsContentHead(1)), Buffer.alloc(8 << 20, 0x20)]),
        { level: 1 },
      ],
    })
    expect(formatError(() => readOds(spaces)).message).toMatch(
      /content\.xml holds more than 524288 bytes of text in one place/,
    )
  })
})

describe('ODS writer', () => {
  it('round-trips text, numbers, booleans and empty cells through the reader', () => {
    const header = ['part_number', 'text', 'number', 'flag']
    const rows: Cell[][] = TRICKY_TEXT.map((text, i) => [
      `P-${i}`,
      text,
      [0, -1.5, 1e21, 0.1 + 0.2][i % 4] as number,
      i % 3 === 0 ? null : i % 2 === 0,
    ])
    const sheet = readOds(writeOds(header, rows))
    expect(sheet.header).toEqual(header)
    expect(sheet.rows.map((r) => r.cells)).toEqual(
      // trailing empty cells are not materialised
      rows.map((cells) => (cells[3] === null ? cells.slice(0, 3) : cells)),
    )
  })

  it('keeps carriage returns as character references, so CRLF text comes back as it was', () => {
    const sheet = readOds(writeOds(['a'], [['one\r\ntwo\rthree\nfour']]))
    expect(sheet.rows[0]?.cells).toEqual(['one\r\ntwo\rthree\nfour'])
  })

  it('replaces characters XML cannot carry instead of writing a broken file', () => {
    const sheet = readOds(writeOds(['a'], [['bell\u0007 and lone \uD800 surrogate']]))
    expect(sheet.rows[0]?.cells).toEqual(['bell\uFFFD and lone \uFFFD surrogate'])
  })

  it('writes spaces that ODF would collapse as text:s', () => {
    const content = new TextDecoder().decode(
      unzipSync(writeOds(['  a  b c '], []), { filter: (f) => f.name === 'content.xml' })[
        'content.xml'
      ],
    )
    expect(content).toContain(
      '<text:p><text:s text:c="2"/>a<text:s text:c="2"/>b c<text:s/></text:p>',
    )
  })

  it('starts the zip with an uncompressed mimetype entry, as ODF requires', () => {
    const ods = writeOds(['a'], [])
    const view = Buffer.from(ods)
    expect(view.readUInt32LE(0)).toBe(0x04034b50) // local file header
    expect(view.readUInt16LE(8)).toBe(0) // method: stored
    expect(view.readUInt16LE(26)).toBe('mimetype'.length)
    expect(view.readUInt16LE(28)).toBe(0) // no extra field
    expect(view.toString('latin1', 30, 38)).toBe('mimetype')
    expect(view.toString('latin1', 38, 38 + ODS_MIME_TYPE.length)).toBe(ODS_MIME_TYPE)
  })

  it('builds content.xml from pieces deflated one at a time, each on its own', () => {
    // Given three pages of rows, each deflated by itself with the CRC and size carried along
    const pages: Cell[][][] = [0, 1, 2].map((p) =>
      Array.from({ length: 2000 }, (_, i) => [`P-${p}-${i}`, `row ${i} ${'x'.repeat(i % 50)}`, i]),
    )
    const chunks: Uint8Array[] = []
    const zip = new OdsZip((c) => chunks.push(c))
    let before = { crc: 0, size: 0 }
    let written = 0
    pages.forEach((rows, p) => {
      const head = p === 0 ? odsContentHead(3) + odsRowsXml([['a', 'b', 'c']]) : ''
      const piece = deflateContentPiece(head + odsRowsXml(rows), before, false)
      zip.piece(piece, false)
      before = piece
      // Then zip chunks come out as pieces are added, before the file is complete
      expect(chunks.reduce((n, c) => n + c.length, 0)).toBeGreaterThan(written)
      written = chunks.reduce((n, c) => n + c.length, 0)
    })
    zip.piece(deflateContentPiece(ODS_CONTENT_TAIL, before, true), true)
    // And the file reads back whole, with the CRC of the whole content.xml in its directory
    const file = Buffer.concat(chunks)
    const content = unzipSync(file)['content.xml'] as Uint8Array
    const entry = file.lastIndexOf('content.xml') - 46 // its central directory entry
    expect(file.readUInt32LE(entry)).toBe(0x02014b50)
    expect(file.readUInt32LE(entry + 16)).toBe(crc32(content))
    const sheet = readOds(file)
    expect(sheet.header).toEqual(['a', 'b', 'c'])
    expect(sheet.rows.map((r) => r.cells)).toEqual(pages.flat())
  })
})

describe('columnLetter', () => {
  it('names columns as spreadsheets do', () => {
    expect([0, 1, 25, 26, 27, 51, 52, 701, 702].map(columnLetter)).toEqual([
      'A',
      'B',
      'Z',
      'AA',
      'AB',
      'AZ',
      'BA',
      'ZZ',
      'AAA',
    ])
  })
})
