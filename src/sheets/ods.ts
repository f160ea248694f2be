import { strToU8, unzipSync, Zip, ZipDeflate, ZipPassThrough } from 'fflate'
import { SaxesParser, type SaxesTagNS } from 'saxes'
import {
  type Cell,
  cellText,
  DEFAULT_SHEET_LIMITS,
  type Sheet,
  type SheetLimits,
  type SheetRow,
  SheetFormatError,
  tooManyColumns,
  tooManyRows,
} from './sheet.js'

/**
 * OpenDocument spreadsheets (ODF 1.2): the first table of content.xml, read with a streaming XML
 * parser; written as a zip stream, row by row.
 */

export const ODS_MIME_TYPE = 'application/vnd.oasis.opendocument.spreadsheet'

const NS_OFFICE = 'urn:oasis:names:tc:opendocument:xmlns:office:1.0'
const NS_TABLE = 'urn:oasis:names:tc:opendocument:xmlns:table:1.0'
const NS_TEXT = 'urn:oasis:names:tc:opendocument:xmlns:text:1.0'
const NS_DRAW = 'urn:oasis:names:tc:opendocument:xmlns:drawing:1.0'

export interface OdsReadOptions extends SheetLimits {
  /**
   * Largest content.xml (uncompressed) the reader inflates; a zip bomb stops here. The default
   * is well above what DEFAULT_SHEET_LIMITS' 100,000 rows take (about 25 MB for 10 columns).
   */
  maxContentBytes: number
}

const DEFAULT_ODS_READ_OPTIONS: OdsReadOptions = {
  ...DEFAULT_SHEET_LIMITS,
  maxContentBytes: 256 * 1024 * 1024,
}

/** How much XML text is handed to the parser at a time. */
const PARSE_CHUNK = 1 << 20

/** Thrown from a handler to stop parsing once the first table is complete. */
const FIRST_TABLE_DONE = Symbol('first table done')

function extractContent(input: Uint8Array, maxContentBytes: number): Uint8Array {
  let contentSize = -1
  let files: Record<string, Uint8Array>
  try {
    // The central directory is read first and only the entries kept here are inflated; the
    // declared size bounds the output buffer, so a lying entry is cut short (and then fails to
    // parse) instead of growing without end.
    files = unzipSync(input, {
      filter: (file) => {
        if (file.name === 'mimetype') return file.originalSize <= 1024
        if (file.name !== 'content.xml') return false
        contentSize = file.originalSize
        return file.originalSize <= maxContentBytes
      },
    })
  } catch (err) {
    throw new SheetFormatError(
      `not a valid ODS file: the zip archive cannot be read (${(err as Error).message})`,
    )
  }
  const mimetype = files.mimetype ? new TextDecoder().decode(files.mimetype).trim() : undefined
  if (mimetype !== undefined && mimetype !== ODS_MIME_TYPE) {
    throw new SheetFormatError(`not an ODS spreadsheet: the document's type is ${mimetype}`)
  }
  if (contentSize > maxContentBytes) {
    throw new SheetFormatError(
      `the spreadsheet's content.xml is ${contentSize} bytes uncompressed; at most ${maxContentBytes} are read`,
    )
  }
  const content = files['content.xml']
  if (!content) {
    throw new SheetFormatError(
      'not an ODS spreadsheet: the zip archive has no content.xml (save the sheet as .ods or .csv)',
    )
  }
  return content
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
export function readOds(
  input: Uint8Array,
  options: OdsReadOptions = DEFAULT_ODS_READ_OPTIONS,
): Sheet {
  const content = extractContent(input, options.maxContentBytes)
  const limits: SheetLimits = options
  const parser = new SaxesParser({ xmlns: true, fileName: 'content.xml' })

  let header: string[] | null = null
  const rows: SheetRow[] = []
  let nextRow = 1
  let tableDepth = 0
  let firstTableSeen = false

  // The row being read.
  let inRow = false
  let rowRepeat = 1
  let cells: Cell[] = []
  let pendingEmpty = 0

  // The cell being read.
  let inCell = false
  let cellRepeat = 1
  let valueType: string | undefined
  let officeValue: string | undefined
  let booleanValue: string | undefined
  let stringValue: string | undefined
  let paragraphs: string[] = []
  let paragraph: string | null = null
  /** Collapsible white space was the last thing written to the paragraph. */
  let afterSpace = false
  /** Inside an element whose text is not the cell's (annotations, notes, shapes). */
  let ignoredDepth = 0

  const inFirstTable = () => tableDepth === 1 && firstTableSeen

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

  const endRow = () => {
    let row = nextRow
    let repeat = rowRepeat
    nextRow += rowRepeat
    if (row === 1) {
      header = cells.map(cellText)
      row++
      repeat--
    }
    if (cells.length === 0 || repeat === 0) return
    if (rows.length + repeat > limits.maxRows) throw tooManyRows(limits)
    // Repeated rows share one (read-only) cell array.
    for (let i = 0; i < repeat; i++) rows.push({ row: row + i, cells })
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
  }

  const appendLiteral = (text: string) => {
    if (paragraph === null || ignoredDepth > 0) return
    paragraph += text
    afterSpace = false
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
      inRow = true
      rowRepeat = repeatCount(attribute(tag, NS_TABLE, 'number-rows-repeated'))
      cells = []
      pendingEmpty = 0
    } else if ((tag.local === 'table-cell' || tag.local === 'covered-table-cell') && inRow) {
      inCell = true
      cellRepeat = repeatCount(attribute(tag, NS_TABLE, 'number-columns-repeated'))
      valueType = attribute(tag, NS_OFFICE, 'value-type')
      officeValue = attribute(tag, NS_OFFICE, 'value')
      booleanValue = attribute(tag, NS_OFFICE, 'boolean-value')
      stringValue = attribute(tag, NS_OFFICE, 'string-value')
      paragraphs = []
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

  const decoder = new TextDecoder('utf-8', { fatal: true })
  try {
    for (let at = 0; at < content.length; at += PARSE_CHUNK) {
      parser.write(decoder.decode(content.subarray(at, at + PARSE_CHUNK), { stream: true }))
    }
    parser.write(decoder.decode())
    parser.close()
  } catch (err) {
    if (err !== FIRST_TABLE_DONE) {
      if (err instanceof SheetFormatError) throw err
      throw new SheetFormatError(
        `not a valid ODS file: content.xml is not well-formed XML (${(err as Error).message})`,
      )
    }
  }
  if (!firstTableSeen) throw new SheetFormatError('the ODS file holds no table')
  return { header: header ?? [], rows }
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

/** Bytes of content.xml collected before they are handed to the deflater. */
const FLUSH_AT = 64 * 1024

/**
 * Writes an ODS file as a zip stream: `mimetype` first and stored, then the manifest, then
 * content.xml deflated as rows arrive. Output chunks go to `onChunk` synchronously; memory stays
 * bounded by the deflater's window, whatever the number of rows.
 */
export class OdsWriter {
  private readonly zip: Zip
  private readonly content: ZipDeflate
  private pending: string[] = []
  private pendingLength = 0
  private ended = false

  constructor(
    columns: number,
    onChunk: (chunk: Uint8Array) => void,
    options: { sheetName?: string } = {},
  ) {
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
    this.content = new ZipDeflate('content.xml', { level: 6 })
    this.zip.add(this.content)
    const name = escapeXml(options.sheetName ?? 'Sheet1')
    this.write(
      `${CONTENT_HEAD}<table:table table:name="${name}">` +
        `<table:table-column table:number-columns-repeated="${Math.max(1, columns)}"/>`,
    )
  }

  row(cells: readonly Cell[]): void {
    if (this.ended) throw new Error('OdsWriter: row after end')
    this.write(rowXml(cells))
  }

  end(): void {
    if (this.ended) return
    this.ended = true
    this.write(CONTENT_TAIL)
    this.flush(true)
    this.zip.end()
  }

  private write(xml: string): void {
    this.pending.push(xml)
    this.pendingLength += xml.length
    if (this.pendingLength >= FLUSH_AT) this.flush(false)
  }

  private flush(final: boolean): void {
    const text = this.pending.join('')
    this.pending = []
    this.pendingLength = 0
    this.content.push(strToU8(text), final)
  }
}

/** A whole ODS file in memory (tests, small sheets). */
export function writeOds(
  header: readonly string[],
  rows: readonly (readonly Cell[])[],
): Uint8Array {
  const chunks: Uint8Array[] = []
  const writer = new OdsWriter(header.length, (c) => chunks.push(c))
  writer.row(header)
  for (const row of rows) writer.row(row)
  writer.end()
  return Buffer.concat(chunks)
}
