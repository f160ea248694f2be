import { crc32, constants as zlibConstants, deflateRawSync } from 'node:zlib'
import { Inflate, strToU8, Zip, ZipDeflate, type ZipInputFile, ZipPassThrough } from 'fflate'
import { SaxesParser, type SaxesTagNS } from 'saxes'
import {
  type Cell,
  cellText,
  cellTooLong,
  collectSheet,
  DEFAULT_SHEET_LIMITS,
  type Sheet,
  type SheetLimits,
  type SheetSink,
  SheetFormatError,
  tooManyColumns,
  tooManyRows,
} from './sheet.js'

/**
 * OpenDocument spreadsheets (ODF 1.2): the first table of content.xml, inflated and parsed as a
 * stream; written as a zip stream whose content.xml is deflated in pieces.
 */

export const ODS_MIME_TYPE = 'application/vnd.oasis.opendocument.spreadsheet'

const NS_OFFICE = 'urn:oasis:names:tc:opendocument:xmlns:office:1.0'
const NS_TABLE = 'urn:oasis:names:tc:opendocument:xmlns:table:1.0'
const NS_TEXT = 'urn:oasis:names:tc:opendocument:xmlns:text:1.0'
const NS_DRAW = 'urn:oasis:names:tc:opendocument:xmlns:drawing:1.0'

/**
 * How much compressed data is inflated at a time. Deflate expands at most about 1032 times, so
 * no single chunk that comes out is larger than about 4 MiB, whatever the file.
 */
const INFLATE_CHUNK = 4 * 1024

/** Thrown from a handler to stop parsing once the first table is complete. */
const FIRST_TABLE_DONE = Symbol('first table done')

// ---- the zip container ----

interface ZipEntry {
  name: string
  flags: number
  method: number
  compressedSize: number
  /** What the headers claim; a bound is applied to what really comes out. */
  size: number
  dataStart: number
}

function unreadableZip(why: string): SheetFormatError {
  return new SheetFormatError(`not a valid ODS file: the zip archive cannot be read (${why})`)
}

/**
 * The entries of a zip archive, from its central directory (the authoritative list, which is
 * also what fflate's unzipSync reads). fflate's streaming Unzip is not used: it finds the end of
 * an entry written with a data descriptor (as silo's own export and many writers do) by scanning
 * for a signature, and its unzipSync inflates into a buffer of the size the headers declare.
 * Here each entry is inflated as a stream and its real output counted instead.
 */
function zipEntries(input: Uint8Array): Map<string, ZipEntry> {
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength)
  const u16 = (at: number) => view.getUint16(at, true)
  const u32 = (at: number) => view.getUint32(at, true)
  const inside = (at: number, length: number) => at >= 0 && at + length <= input.length
  let end = -1
  for (let at = input.length - 22; at >= 0 && at >= input.length - 22 - 0xffff; at--) {
    if (u32(at) === 0x06054b50) {
      end = at
      break
    }
  }
  if (end < 0) throw unreadableZip('no end of central directory')
  const count = u16(end + 10)
  let at = u32(end + 16)
  if (count === 0xffff || at === 0xffffffff) throw unreadableZip('ZIP64 archives are not read')
  const entries = new Map<string, ZipEntry>()
  const decoder = new TextDecoder()
  for (let i = 0; i < count; i++) {
    if (!inside(at, 46) || u32(at) !== 0x02014b50) throw unreadableZip('broken central directory')
    const nameLength = u16(at + 28)
    const local = u32(at + 42)
    if (!inside(at + 46, nameLength) || !inside(local, 30) || u32(local) !== 0x04034b50) {
      throw unreadableZip('broken central directory')
    }
    const entry: ZipEntry = {
      name: decoder.decode(input.subarray(at + 46, at + 46 + nameLength)),
      flags: u16(at + 8),
      method: u16(at + 10),
      compressedSize: u32(at + 20),
      size: u32(at + 24),
      dataStart: local + 30 + u16(local + 26) + u16(local + 28),
    }
    if (!inside(entry.dataStart, entry.compressedSize))
      throw unreadableZip(`${entry.name} is cut short`)
    entries.set(entry.name, entry)
    at += 46 + nameLength + u16(at + 30) + u16(at + 32)
  }
  return entries
}

/**
 * Inflates one entry chunk by chunk into `onChunk`, and stops with `tooLarge` as soon as more
 * than `maxBytes` have come out, whatever the headers said.
 */
function inflateEntry(
  input: Uint8Array,
  entry: ZipEntry,
  maxBytes: number,
  tooLarge: () => Error,
  onChunk: (chunk: Uint8Array) => void,
): void {
  if (entry.flags & 1) throw unreadableZip(`${entry.name} is encrypted`)
  if (entry.method !== 0 && entry.method !== 8) {
    throw unreadableZip(`${entry.name} uses compression method ${entry.method}`)
  }
  let total = 0
  // What the consumer throws (a limit, bad XML) passes through the inflater unchanged.
  let consumerError: unknown
  const take = (chunk: Uint8Array) => {
    total += chunk.length
    try {
      if (total > maxBytes) throw tooLarge()
      onChunk(chunk)
    } catch (err) {
      consumerError = err
      throw err
    }
  }
  const data = input.subarray(entry.dataStart, entry.dataStart + entry.compressedSize)
  const inflater = entry.method === 8 ? new Inflate((chunk) => take(chunk)) : undefined
  for (let at = 0; at < data.length || at === 0; at += INFLATE_CHUNK) {
    const slice = data.subarray(at, at + INFLATE_CHUNK)
    const last = at + INFLATE_CHUNK >= data.length
    if (!inflater) take(slice)
    else {
      try {
        inflater.push(slice, last)
      } catch (err) {
        if (err === consumerError) throw err
        throw unreadableZip(`${entry.name} cannot be inflated: ${(err as Error).message}`)
      }
    }
    if (last) break
  }
}

function readMimetype(input: Uint8Array, entry: ZipEntry | undefined): string | undefined {
  if (!entry) return undefined
  const chunks: Uint8Array[] = []
  inflateEntry(
    input,
    entry,
    1024,
    () => unreadableZip('mimetype is too long'),
    (c) => chunks.push(c),
  )
  return new TextDecoder().decode(Buffer.concat(chunks)).trim()
}

function attribute(tag: SaxesTagNS, uri: string, local: string): string | undefined {
  for (const key in tag.attributes) {
    const attr = tag.attributes[key] as SaxesTagNS['attributes'][string]
    if (attr.local === local && attr.uri === uri) return attr.value
  }
  return undefined
}

function repeatCount(value: string | undefined): number {
  if (value === undefined) return 1
  const n = Number(value)
  return Number.isSafeInteger(n) && n >= 1 ? n : 1
}

/**
 * White space that ODF collapses. A carriage return is not among them here: XML parsers turn
 * literal CRs into LFs, so one that reaches the text came from `&#13;`, which the writer uses.
 */
function isWhiteSpace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a
}

/**
 * Reads the first table of an ODS file. Repeated rows and columns are expanded only where they
 * hold a value, so the million empty rows LibreOffice may declare cost nothing. Cell values:
 * float, percentage and currency cells give their number (office:value), boolean cells a boolean,
 * every other cell its text: paragraphs joined by "\n", text:s, text:tab and text:line-break
 * expanded, spans and links flattened, annotations left out.
 */
export function readOdsInto(
  input: Uint8Array,
  sink: SheetSink,
  limits: SheetLimits = DEFAULT_SHEET_LIMITS,
): void {
  const entries = zipEntries(input)
  const mimetype = readMimetype(input, entries.get('mimetype'))
  if (mimetype !== undefined && mimetype !== ODS_MIME_TYPE) {
    throw new SheetFormatError(`not an ODS spreadsheet: the document's type is ${mimetype}`)
  }
  const content = entries.get('content.xml')
  if (!content) {
    throw new SheetFormatError(
      'not an ODS spreadsheet: the zip archive has no content.xml (save the sheet as .ods or .csv)',
    )
  }
  const contentTooLarge = (size: number | string) =>
    new SheetFormatError(
      `the spreadsheet's content.xml is ${size} bytes uncompressed; at most ${limits.maxContentBytes} are read`,
    )
  if (content.size > limits.maxContentBytes) throw contentTooLarge(content.size)
  const parser = new SaxesParser({ xmlns: true, fileName: 'content.xml' })

  let headerSeen = false
  let dataRows = 0
  /** table:table-row elements read, whatever they repeat: each costs work even when empty. */
  let rowElements = 0
  let nextRow = 1
  let tableDepth = 0
  let firstTableSeen = false

  // The row being read.
  let inRow = false
  let rowRepeat = 1
  let cells: Cell[] = []
  let pendingEmpty = 0
  /** Cell elements in the row, whatever they repeat. */
  let cellElements = 0

  // The cell being read.
  let inCell = false
  let cellRepeat = 1
  let valueType: string | undefined
  let officeValue: string | undefined
  let booleanValue: string | undefined
  let stringValue: string | undefined
  let paragraphs: string[] = []
  /** Characters of the cell's text so far: its paragraphs and the newlines joining them. */
  let cellLength = 0
  let paragraph: string | null = null
  /** Collapsible white space was the last thing written to the paragraph. */
  let afterSpace = false
  /** Inside an element whose text is not the cell's (annotations, notes, shapes). */
  let ignoredDepth = 0

  const inFirstTable = () => tableDepth === 1 && firstTableSeen

  const checkCellLength = () => {
    if (cellLength + (paragraph?.length ?? 0) > limits.maxCellLength) {
      throw cellTooLong(limits, nextRow, cells.length + pendingEmpty)
    }
  }

  const addCells = (value: Cell, repeat: number) => {
    if (value === null) {
      pendingEmpty += repeat
      return
    }
    if (cells.length + pendingEmpty + repeat > limits.maxColumns) throw tooManyColumns(limits)
    for (; pendingEmpty > 0; pendingEmpty--) cells.push(null)
    for (let i = 0; i < repeat; i++) cells.push(value)
  }

  const cellValue = (): Cell => {
    const text = paragraphs.join('\n')
    switch (valueType) {
      case 'float':
      case 'percentage':
      case 'currency': {
        const n = officeValue === undefined || officeValue.trim() === '' ? NaN : Number(officeValue)
        if (Number.isFinite(n)) return n
        break
      }
      case 'boolean':
        if (booleanValue === 'true') return true
        if (booleanValue === 'false') return false
        break
      case 'string':
        if (stringValue !== undefined) return stringValue === '' ? null : stringValue
        break
    }
    return text === '' ? null : text
  }

  // What the sink throws (its own verdict on a row) passes through the XML parser unchanged.
  let sinkError: unknown
  const toSink = (deliver: () => void) => {
    try {
      deliver()
    } catch (err) {
      sinkError = err
      throw err
    }
  }

  const endRow = () => {
    let row = nextRow
    let repeat = rowRepeat
    nextRow += rowRepeat
    if (row === 1) {
      headerSeen = true
      toSink(() => sink.header(cells.map(cellText)))
      row++
      repeat--
    }
    if (cells.length === 0 || repeat === 0) return
    if (dataRows + repeat > limits.maxRows) throw tooManyRows(limits)
    dataRows += repeat
    // Repeated rows share one (read-only) cell array.
    toSink(() => {
      for (let i = 0; i < repeat; i++) sink.row({ row: row + i, cells })
    })
  }

  const appendText = (text: string) => {
    if (paragraph === null || ignoredDepth > 0) return
    // ODF white-space rules: a run of spaces, tabs and line feeds in the XML counts as one space,
    // and none at the start of a paragraph; text:s, text:tab and text:line-break carry the rest.
    let out = ''
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i)
      if (isWhiteSpace(code)) {
        if (!afterSpace && (paragraph.length > 0 || out.length > 0)) out += ' '
        afterSpace = true
      } else {
        out += text[i]
        afterSpace = false
      }
    }
    paragraph += out
    checkCellLength()
  }

  const appendLiteral = (text: string) => {
    if (paragraph === null || ignoredDepth > 0) return
    paragraph += text
    afterSpace = false
    checkCellLength()
  }

  parser.on('opentag', (tag) => {
    if (tag.uri === NS_TABLE && tag.local === 'table') {
      tableDepth++
      if (tableDepth === 1) firstTableSeen = true
      return
    }
    if (!inFirstTable()) return
    if (inCell) {
      if (ignoredDepth > 0 || tag.uri === NS_DRAW) {
        ignoredDepth++
        return
      }
      if (tag.uri === NS_OFFICE && tag.local === 'annotation') {
        ignoredDepth++
        return
      }
      if (tag.uri !== NS_TEXT) return
      switch (tag.local) {
        case 'note':
          ignoredDepth++
          return
        case 'p':
        case 'h':
          if (paragraph === null) {
            paragraph = ''
            afterSpace = false
          }
          return
        case 's':
          appendLiteral(' '.repeat(Math.min(repeatCount(attribute(tag, NS_TEXT, 'c')), 65536)))
          return
        case 'tab':
          appendLiteral('\t')
          return
        case 'line-break':
          appendLiteral('\n')
          return
      }
      return
    }
    if (tag.uri !== NS_TABLE) return
    if (tag.local === 'table-row' && !inRow) {
      if (++rowElements > limits.maxRows + 1) throw tooManyRows(limits)
      inRow = true
      rowRepeat = repeatCount(attribute(tag, NS_TABLE, 'number-rows-repeated'))
      cells = []
      pendingEmpty = 0
      cellElements = 0
    } else if ((tag.local === 'table-cell' || tag.local === 'covered-table-cell') && inRow) {
      if (++cellElements > limits.maxColumns) throw tooManyColumns(limits)
      inCell = true
      cellRepeat = repeatCount(attribute(tag, NS_TABLE, 'number-columns-repeated'))
      valueType = attribute(tag, NS_OFFICE, 'value-type')
      officeValue = attribute(tag, NS_OFFICE, 'value')
      booleanValue = attribute(tag, NS_OFFICE, 'boolean-value')
      stringValue = attribute(tag, NS_OFFICE, 'string-value')
      if (stringValue !== undefined && stringValue.length > limits.maxCellLength) {
        throw cellTooLong(limits, nextRow, cells.length + pendingEmpty)
      }
      paragraphs = []
      cellLength = 0
      paragraph = null
      ignoredDepth = 0
    }
  })

  parser.on('closetag', (tag) => {
    if (tag.uri === NS_TABLE && tag.local === 'table') {
      tableDepth--
      if (tableDepth === 0 && firstTableSeen) throw FIRST_TABLE_DONE
      return
    }
    if (!inFirstTable()) return
    if (inCell) {
      if (ignoredDepth > 0) {
        ignoredDepth--
        return
      }
      if (tag.uri === NS_TEXT && (tag.local === 'p' || tag.local === 'h') && paragraph !== null) {
        paragraphs.push(paragraph)
        cellLength += paragraph.length + 1
        paragraph = null
        return
      }
      if (
        tag.uri === NS_TABLE &&
        (tag.local === 'table-cell' || tag.local === 'covered-table-cell')
      ) {
        inCell = false
        addCells(cellValue(), cellRepeat)
      }
      return
    }
    if (tag.uri === NS_TABLE && tag.local === 'table-row' && inRow) {
      inRow = false
      endRow()
    }
  })

  parser.on('text', appendText)
  parser.on('cdata', appendLiteral)

  // saxes gathers a text node whole before handing it over; a run of bytes without markup is
  // bounded so that one giant text node cannot grow in memory. An escaped character of a cell's
  // text takes at most 6 bytes (&quot;), so the longest cell fits well within the bound.
  const maxTextRun = 8 * limits.maxCellLength
  let textRun = 0
  const checkTextRuns = (chunk: Uint8Array) => {
    for (let at = 0; ;) {
      const next = chunk.indexOf(0x3c, at)
      textRun += (next < 0 ? chunk.length : next) - at
      if (textRun > maxTextRun) {
        throw new SheetFormatError(
          `the spreadsheet's content.xml holds more than ${maxTextRun} bytes of text in one place`,
        )
      }
      if (next < 0) return
      textRun = 0
      at = next + 1
    }
  }

  const decoder = new TextDecoder('utf-8', { fatal: true })
  try {
    inflateEntry(
      input,
      content,
      limits.maxContentBytes,
      () => contentTooLarge(`more than ${limits.maxContentBytes}`),
      (chunk) => {
        checkTextRuns(chunk)
        parser.write(decoder.decode(chunk, { stream: true }))
      },
    )
    parser.write(decoder.decode())
    parser.close()
  } catch (err) {
    if (err !== FIRST_TABLE_DONE) {
      if (err instanceof SheetFormatError || err === sinkError) throw err
      throw new SheetFormatError(
        `not a valid ODS file: content.xml is not well-formed XML (${(err as Error).message})`,
      )
    }
  }
  if (!firstTableSeen) throw new SheetFormatError('the ODS file holds no table')
  if (!headerSeen) sink.header([])
}

/** The first table as a whole in memory. */
export function readOds(input: Uint8Array, limits: SheetLimits = DEFAULT_SHEET_LIMITS): Sheet {
  const { sink, sheet } = collectSheet()
  readOdsInto(input, sink, limits)
  return sheet
}

// ---- writing ----

const MANIFEST = `<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">
 <manifest:file-entry manifest:full-path="/" manifest:version="1.2" manifest:media-type="${ODS_MIME_TYPE}"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
</manifest:manifest>
`

const CONTENT_HEAD =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  `<office:document-content xmlns:office="${NS_OFFICE}" xmlns:table="${NS_TABLE}"` +
  ` xmlns:text="${NS_TEXT}" office:version="1.2">` +
  '<office:body><office:spreadsheet>'

const CONTENT_TAIL = '</table:table></office:spreadsheet></office:body></office:document-content>'

/** Characters XML 1.0 cannot carry at all (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/F). */
const NOT_XML_CHAR =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

function escapeXml(text: string): string {
  return text
    .replace(NOT_XML_CHAR, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/\r/g, '&#13;')
}

/**
 * One paragraph's text as ODF: a single space between two other characters stays literal; every
 * other space (leading, trailing, repeated) becomes text:s, which readers never collapse.
 */
function paragraphXml(text: string): string {
  const tokens = text.split(/( +|\t)/)
  let out = ''
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string
    if (token === '') continue
    if (token === '\t') out += '<text:tab/>'
    else if (token[0] === ' ') {
      const before = tokens[i - 1]
      const after = tokens[i + 1]
      const between = token.length === 1 && before && before !== '\t' && after && after !== '\t'
      if (between) out += ' '
      else out += token.length === 1 ? '<text:s/>' : `<text:s text:c="${token.length}"/>`
    } else out += escapeXml(token)
  }
  return out
}

function cellXml(cell: Cell): string {
  if (cell === null || cell === '') return '<table:table-cell/>'
  if (typeof cell === 'number') {
    return `<table:table-cell office:value-type="float" office:value="${cell}"><text:p>${cell}</text:p></table:table-cell>`
  }
  if (typeof cell === 'boolean') {
    return `<table:table-cell office:value-type="boolean" office:boolean-value="${cell}"><text:p>${cell ? 'TRUE' : 'FALSE'}</text:p></table:table-cell>`
  }
  // A carriage return stays a character (&#13;) so that CRLF text comes back as it was.
  const paragraphs = cell
    .split('\n')
    .map((p) => (p === '' ? '<text:p/>' : `<text:p>${paragraphXml(p)}</text:p>`))
  return `<table:table-cell office:value-type="string">${paragraphs.join('')}</table:table-cell>`
}

function rowXml(cells: readonly Cell[]): string {
  let last = cells.length
  while (last > 0 && (cells[last - 1] === null || cells[last - 1] === '')) last--
  let out = '<table:table-row>'
  for (let i = 0; i < last;) {
    const cell = cells[i] ?? null
    if (cell === null || cell === '') {
      let run = 1
      while (i + run < last && (cells[i + run] === null || cells[i + run] === '')) run++
      out +=
        run === 1
          ? '<table:table-cell/>'
          : `<table:table-cell table:number-columns-repeated="${run}"/>`
      i += run
    } else {
      out += cellXml(cell)
      i++
    }
  }
  // A row with no cell at all is not valid ODF.
  return `${out}${last === 0 ? '<table:table-cell/>' : ''}</table:table-row>`
}

/** The start of content.xml, up to the first row of a table of `columns` columns. */
export function odsContentHead(columns: number, sheetName = 'Sheet1'): string {
  return (
    `${CONTENT_HEAD}<table:table table:name="${escapeXml(sheetName)}">` +
    `<table:table-column table:number-columns-repeated="${Math.max(1, columns)}"/>`
  )
}

/** Rows as content.xml table rows. */
export function odsRowsXml(rows: readonly (readonly Cell[])[]): string {
  let out = ''
  for (const cells of rows) out += rowXml(cells)
  return out
}

export { CONTENT_TAIL as ODS_CONTENT_TAIL }

/** A piece of content.xml, deflated, and the running CRC-32 and size of the text so far. */
export interface DeflatedPiece {
  bytes: Uint8Array
  crc: number
  size: number
}

/**
 * Deflates one piece of content.xml. Pieces end on a byte boundary (a sync flush) and refer to
 * nothing before them, so the pieces of a file can be made one at a time, anywhere (in a worker
 * thread, each by a fresh deflater), and simply concatenated; the last one ends the stream.
 * `before` carries the CRC and size of the pieces already made.
 */
export function deflateContentPiece(
  xml: string,
  before: { crc: number; size: number },
  last: boolean,
): DeflatedPiece {
  const text = Buffer.from(xml, 'utf8')
  const bytes = deflateRawSync(text, {
    level: 6,
    finishFlush: last ? zlibConstants.Z_FINISH : zlibConstants.Z_SYNC_FLUSH,
  })
  return { bytes, crc: crc32(text, before.crc), size: before.size + text.length }
}

/**
 * Writes an ODS file as a zip stream: `mimetype` first and stored, then the manifest, then
 * content.xml from pieces made by deflateContentPiece. Output chunks go to `onChunk`
 * synchronously; the zip framing is all this does, so it costs little wherever it runs.
 */
export class OdsZip {
  private readonly zip: Zip
  private readonly content: ZipInputFile & { size: number; crc: number }
  private ended = false

  constructor(onChunk: (chunk: Uint8Array) => void) {
    this.zip = new Zip((err, data) => {
      if (err) throw err
      onChunk(data)
    })
    const mimetype = new ZipPassThrough('mimetype')
    this.zip.add(mimetype)
    mimetype.push(strToU8(ODS_MIME_TYPE), true)
    const manifest = new ZipDeflate('META-INF/manifest.xml', { level: 6 })
    this.zip.add(manifest)
    manifest.push(strToU8(MANIFEST), true)
    // An entry whose data comes already deflated; fflate writes its header and data descriptor.
    this.content = { filename: 'content.xml', compression: 8, size: 0, crc: 0 }
    this.zip.add(this.content)
  }

  /** Adds a piece; the one made with `last` ends content.xml and the file. */
  piece(piece: DeflatedPiece, last: boolean): void {
    if (this.ended) throw new Error('OdsZip: piece after the last one')
    this.content.crc = piece.crc
    this.content.size = piece.size
    this.content.ondata?.(null, piece.bytes as Uint8Array<ArrayBuffer>, last)
    if (last) {
      this.ended = true
      this.zip.end()
    }
  }
}

/** A whole ODS file in memory (tests, small sheets). */
export function writeOds(
  header: readonly string[],
  rows: readonly (readonly Cell[])[],
): Uint8Array {
  const chunks: Uint8Array[] = []
  const zip = new OdsZip((c) => chunks.push(c))
  const xml = odsContentHead(header.length) + odsRowsXml([header, ...rows]) + CONTENT_TAIL
  zip.piece(deflateContentPiece(xml, { crc: 0, size: 0 }, true), true)
  return Buffer.concat(chunks)
}
