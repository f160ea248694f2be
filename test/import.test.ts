import { parse } from 'csv-parse/sync'
import { readFileSync } from 'node:fs'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { csvLines, readCsv } from '../src/sheets/csv.js'
import { ODS_MIME_TYPE, readOds, writeOds } from '../src/sheets/ods.js'
import type { Cell } from '../src/sheets/sheet.js'
import { actorNamed, api, startServer, type TestServer } from './support/server.js'
import { openStream, closeStreams } from './support/sseClient.js'

/**
 * Import and export (README "Import and export", "Bad input"): all-or-nothing imports from CSV and ODS with one event per
 * created or changed item, dry runs, exports that import again without a change, and the usual
 * roles, read-only mode and bad input. "Nothing changed" is checked against the database itself.
 */

/** One server for the whole file (starting one costs seconds); each test starts from no items. */
let shared: TestServer
/** Servers a test starts for itself (other configuration). */
let own: TestServer | undefined

beforeAll(async () => {
  shared = await startServer()
})

afterAll(async () => {
  await shared?.close()
})

beforeEach(async () => {
  // Setup only: the log keeps its events, and tests compare against a snapshot or relative ids.
  await shared.app.db.query('DELETE FROM items')
})

afterEach(async () => {
  closeStreams()
  await own?.close()
  own = undefined
})

async function start(overrides?: Record<string, unknown>): Promise<TestServer> {
  if (!overrides) return shared
  own = await startServer({ overrides })
  return own
}

const subscribe = openStream

async function dbState(s: TestServer) {
  const db = s.app.db
  return {
    items: (await db.query('SELECT * FROM items ORDER BY part_number')).rows,
    events: (
      await db.query<{ n: number; last: number }>(
        'SELECT count(*)::int AS n, coalesce(max(id), 0)::int AS last FROM events',
      )
    ).rows[0],
  }
}

async function storedItems(s: TestServer) {
  const { rows } = await s.app.db.query<Record<string, unknown>>(
    'SELECT part_number, description, item_type, properties FROM items ORDER BY part_number',
  )
  return rows
}

async function storedEvents(s: TestServer) {
  const { rows } = await s.app.db.query<{ id: number; type: string; data: unknown }>(
    'SELECT id::int AS id, type, data FROM events ORDER BY id',
  )
  return rows
}

type Format = 'csv' | 'ods'
const CONTENT_TYPE: Record<Format, string> = { csv: 'text/csv', ods: ODS_MIME_TYPE }

/** POSTs a file as the raw body; `token: null` sends none. */
async function upload(
  s: TestServer,
  format: Format,
  file: string | Uint8Array,
  options: { token?: string | null; query?: string; contentType?: string } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = {
    'content-type': options.contentType ?? CONTENT_TYPE[format],
  }
  const token = options.token === undefined ? s.tokens.editor : options.token
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(`${s.url}/api/import/${format}${options.query ?? ''}`, {
    method: 'POST',
    headers,
    body: file,
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null }
}

/** POSTs a file as multipart/form-data, the way a browser form sends it. */
async function uploadForm(
  s: TestServer,
  format: Format,
  file: string | Uint8Array,
  options: { token?: string; field?: string; query?: string } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const form = new FormData()
  form.append(
    options.field ?? 'file',
    new Blob([file], { type: CONTENT_TYPE[format] }),
    `items.${format}`,
  )
  const res = await fetch(`${s.url}/api/import/${format}${options.query ?? ''}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${options.token ?? s.tokens.editor}` },
    body: form,
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null }
}

async function download(s: TestServer, format: Format, token = s.tokens.viewer) {
  const res = await fetch(`${s.url}/api/export/items.${format}`, {
    headers: { authorization: `Bearer ${token}` },
  })
  return {
    status: res.status,
    headers: res.headers,
    bytes: new Uint8Array(await res.arrayBuffer()),
  }
}

async function createItem(s: TestServer, body: Record<string, unknown>) {
  const res = await api(s, 'POST', '/api/items', { token: s.tokens.editor, body })
  expect(res.status).toBe(201)
  return res.body
}

const csv = (rows: Cell[][]) => csvLines(rows)

const HEADER = ['part_number', 'description', 'item_type']

describe('POST /api/import/csv', () => {
  it('creates new items, updates changed ones and leaves the rest, answering per row', async () => {
    // Given two existing items
    const s = await start()
    await createItem(s, { part_number: 'A-1', description: 'old', item_type: 'part' })
    const same = await createItem(s, {
      part_number: 'A-2',
      description: 'kept',
      item_type: 'drawing',
      properties: { finish: 'zinc' },
    })

    // When a sheet names one new item, one changed and one unchanged
    const res = await upload(
      s,
      'csv',
      csv([
        [...HEADER, 'finish'],
        ['A-3', 'new, with a comma', 'assembly', 'paint'],
        ['A-1', 'new description', 'part', ''],
        ['A-2', 'kept', 'drawing', 'zinc'],
      ]),
    )

    // Then the answer counts them and says what happened to each row
    expect(res.status).toBe(200)
    expect(res.body).toEqual({
      dry_run: false,
      created: 1,
      updated: 1,
      unchanged: 1,
      items: [
        { row: 2, part_number: 'A-3', action: 'created' },
        { row: 3, part_number: 'A-1', action: 'updated' },
        { row: 4, part_number: 'A-2', action: 'unchanged' },
      ],
    })
    // And the database holds the sheet's values
    expect(await storedItems(s)).toEqual([
      { part_number: 'A-1', description: 'new description', item_type: 'part', properties: {} },
      {
        part_number: 'A-2',
        description: 'kept',
        item_type: 'drawing',
        properties: { finish: 'zinc' },
      },
      {
        part_number: 'A-3',
        description: 'new, with a comma',
        item_type: 'assembly',
        properties: { finish: 'paint' },
      },
    ])
    // And the unchanged item was not touched
    const after = await api(s, 'GET', '/api/items/A-2', { token: s.tokens.viewer })
    expect(after.body.updated_at).toBe(same.updated_at)
  })

  it('treats property columns as authoritative and leaves other properties alone', async () => {
    // Given an item with typed properties, some of them not in the sheet
    const s = await start()
    await createItem(s, {
      part_number: 'P-1',
      item_type: 'part',
      properties: {
        mass_g: 12.5,
        rohs: true,
        dims: { w: 10, h: [1, 2] },
        blank: '',
        removed: 'x',
        untouched: 7,
      },
    })

    // When a CSV sheet spells the typed values as their JSON, leaves "blank" and "removed" empty
    // and adds a new text property
    const res = await upload(
      s,
      'csv',
      csv([
        [...HEADER, 'mass_g', 'rohs', 'dims', 'blank', 'removed', 'added'],
        ['P-1', '', 'part', '12.5', 'true', '{"h":[1,2],"w":10}', '', '', '42'],
      ]),
    )

    // Then typed values spelled the same stay typed, an empty cell removes a property (an
    // existing "" stays), new CSV values are text, and properties without a column stay
    expect(res.status).toBe(200)
    expect(res.body.updated).toBe(1)
    const [item] = await storedItems(s)
    expect(item?.properties).toEqual({
      mass_g: 12.5,
      rohs: true,
      dims: { w: 10, h: [1, 2] },
      blank: '',
      untouched: 7,
      added: '42',
    })
  })

  it('changes a typed property whose cell spells a different value', async () => {
    const s = await start()
    await createItem(s, { part_number: 'P-1', item_type: 'part', properties: { n: 1, b: false } })
    const res = await upload(
      s,
      'csv',
      csv([
        [...HEADER, 'n', 'b'],
        ['P-1', '', 'part', '2', 'yes'],
      ]),
    )
    expect(res.body.updated).toBe(1)
    expect((await storedItems(s))[0]?.properties).toEqual({ n: '2', b: 'yes' })
  })

  it('skips blank rows and counts rows as a spreadsheet shows them', async () => {
    const s = await start()
    const res = await upload(
      s,
      'csv',
      'part_number,description,item_type\r\nB-1,"two\r\nlines",part\r\n,,\r\n\r\nB-2,,drawing\r\n',
    )
    expect(res.status).toBe(200)
    expect(res.body.items).toEqual([
      { row: 2, part_number: 'B-1', action: 'created' },
      { row: 5, part_number: 'B-2', action: 'created' },
    ])
    expect((await storedItems(s))[0]?.description).toBe('two\r\nlines')
  })

  it('takes the file as multipart/form-data with a file part', async () => {
    const s = await start()
    const res = await uploadForm(s, 'csv', csv([HEADER, ['M-1', 'from a form', 'part']]))
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ created: 1 })
    expect(await storedItems(s)).toHaveLength(1)
  })

  it('answers an import of a header alone with zero counts and no event', async () => {
    const s = await start()
    const before = await dbState(s)
    const res = await upload(s, 'csv', 'part_number,description,item_type\n')
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ dry_run: false, created: 0, updated: 0, unchanged: 0, items: [] })
    expect(await dbState(s)).toEqual(before)
  })
})

describe('bad files', () => {
  it('rejects a sheet with bad rows as a whole, listing every bad cell, and writes nothing', async () => {
    // Given an existing item and a subscriber
    const s = await start()
    await createItem(s, { part_number: 'OK-1', description: 'before', item_type: 'part' })
    const before = await dbState(s)
    const events = subscribe(s)
    await events.waitForEvent('server.state')

    // When a sheet mixes good rows with several bad ones
    const res = await upload(
      s,
      'csv',
      csv([
        [...HEADER, 'material'],
        ['OK-1', 'changed', 'part', 'steel'],
        ['OK-2', 'fine', 'part', ''],
        ['-bad', 'leading dash', 'part', ''],
        ['OK-3', 'unknown type', 'widget', ''],
        ['', 'no part number', '', ''],
        ['OK-2', 'repeated', 'part', ''],
        ['OK-4', 'x'.repeat(4097), 'part', '', 'stray'],
        ['OK-5', 'a\u0000b', 'part', 'x\u0000'],
      ]),
    )

    // Then the whole file is refused with every bad cell, by row and column
    expect(res.status).toBe(400)
    expect(res.body).toEqual({
      error: 'invalid_import',
      message: '6 bad rows; nothing was imported',
      errors: [
        { row: 4, column: 'part_number', reason: expect.stringMatching(/^must be letters/) },
        {
          row: 5,
          column: 'item_type',
          reason: 'must be one of part, assembly, drawing, document',
        },
        { row: 6, column: 'part_number', reason: 'is required' },
        {
          row: 6,
          column: 'item_type',
          reason: 'is required; must be one of part, assembly, drawing, document',
        },
        { row: 7, column: 'part_number', reason: 'repeats row 3' },
        { row: 8, column: 'column E', reason: 'value in a column without a name in row 1' },
        { row: 8, column: 'description', reason: 'is longer than 4096 characters' },
        { row: 9, column: 'description', reason: 'must not contain U+0000 (NUL)' },
        { row: 9, column: 'material', reason: 'must not contain U+0000 (NUL)' },
      ],
    })
    // And nothing was written, and no event was stored or sent
    expect(await dbState(s)).toEqual(before)
    await createItem(s, { part_number: 'AFTER', item_type: 'part' })
    const next = await events.waitForEvent('item.created')
    expect(events.stored).toEqual([next])
    expect(next.data.part_number).toBe('AFTER')
  })

  it('caps the error list at 1000 entries and says how many there were', async () => {
    const s = await start()
    const rows: Cell[][] = [HEADER]
    for (let i = 0; i < 1200; i++) rows.push([`C-${i}`, '', 'gadget'])
    const res = await upload(s, 'csv', csv(rows))
    expect(res.status).toBe(400)
    expect(res.body.message).toBe(
      '1200 bad rows; nothing was imported (the first 1000 of 1200 errors are listed)',
    )
    expect(res.body.errors).toHaveLength(1000)
    expect(res.body.errors[999]).toMatchObject({ row: 1001, column: 'item_type' })
  })

  it('names the required columns a header lacks', async () => {
    const s = await start()
    const res = await upload(s, 'csv', 'part_number,descr,notes\nP-1,x,y\n')
    expect(res.status).toBe(400)
    expect(res.body).toEqual({
      error: 'invalid_import',
      message: expect.stringContaining('description: required column is missing'),
      errors: [
        { row: 1, column: 'description', reason: 'required column is missing' },
        { row: 1, column: 'item_type', reason: 'required column is missing' },
      ],
    })
  })

  it('rejects duplicate, empty and over-long column names', async () => {
    const s = await start()
    const long = 'p'.repeat(129)
    const res = await upload(
      s,
      'csv',
      csv([[...HEADER, 'colour', ' colour ', '', long, 'ok', '', '']]),
    )
    expect(res.status).toBe(400)
    expect(res.body.errors).toEqual([
      { row: 1, column: 'colour', reason: 'duplicate column name (also column D)' },
      { row: 1, column: 'column F', reason: 'column has no name' },
      { row: 1, column: long, reason: 'property names are at most 128 characters' },
    ])
  })

  it('rejects an empty file', async () => {
    const s = await start()
    const res = await upload(s, 'csv', '')
    expect(res.status).toBe(400)
    expect(res.body).toMatchObject({
      error: 'invalid_import',
      message:
        'row 1 must name the columns: part_number, description, item_type, then any property columns',
    })
  })

  it('rejects a file that is not valid CSV, saying where', async () => {
    const s = await start()
    const res = await upload(s, 'csv', 'part_number,description,item_type\nP-1,"unclosed,part\n')
    expect(res.status).toBe(400)
    expect(res.body).toEqual({
      error: 'invalid_import',
      message: expect.stringMatching(/^not valid CSV in row 2: Quote Not Closed/),
    })
    expect((await dbState(s)).items).toEqual([])
  })

  it('rejects a CSV import that is not UTF-8', async () => {
    const s = await start()
    const latin1 = Buffer.concat([
      Buffer.from('part_number,description,item_type\nP-1,'),
      Buffer.from([0xd8]),
      Buffer.from(',part\n'),
    ])
    const res = await upload(s, 'csv', latin1)
    expect(res.status).toBe(400)
    expect(res.body.message).toMatch(/not UTF-8/)
  })

  it('rejects an ODS import that is not a zip, not a spreadsheet, or broken XML', async () => {
    const s = await start()
    const notZip = await upload(s, 'ods', 'part_number,description,item_type\n')
    expect(notZip.status).toBe(400)
    expect(notZip.body).toEqual({
      error: 'invalid_import',
      message: expect.stringMatching(/^not a valid ODS file: the zip archive cannot be read/),
    })
    const { zipSync, strToU8 } = await import('fflate')
    const xlsx = await upload(s, 'ods', zipSync({ '[Content_Types].xml': strToU8('<Types/>') }))
    expect(xlsx.status).toBe(400)
    expect(xlsx.body.message).toMatch(/no content\.xml/)
    const broken = await upload(
      s,
      'ods',
      zipSync({
        mimetype: [strToU8(ODS_MIME_TYPE), { level: 0 }],
        'content.xml': strToU8('<office:document-content><unclosed>'),
      }),
    )
    expect(broken.status).toBe(400)
    expect(broken.body.message).toMatch(/not well-formed XML/)
    expect((await dbState(s)).items).toEqual([])
  })

  it('rejects a multipart body without a part named file', async () => {
    const s = await start()
    const res = await uploadForm(s, 'csv', csv([HEADER, ['M-1', '', 'part']]), { field: 'upload' })
    expect(res.status).toBe(400)
    expect(res.body).toEqual({
      error: 'invalid_import',
      message: 'the file part is named "upload"; name it "file"',
    })
    expect((await dbState(s)).items).toEqual([])
  })

  it('rejects a malformed multipart body with 400', async () => {
    const s = await start()
    const part =
      '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n' +
      'part_number,description,item_type\nP-1,,part\n'
    for (const [contentType, body] of [
      ['multipart/form-data', part],
      ['multipart/form-data; boundary=xyz', 'no parts at all'],
      ['multipart/form-data; boundary=xyz', part], // never closed
    ] as const) {
      const res = await upload(s, 'csv', body, { contentType })
      expect({ contentType, body, status: res.status }).toEqual({ contentType, body, status: 400 })
      expect(res.body).toEqual({
        error: 'invalid_import',
        message: expect.stringMatching(/^malformed multipart body: /),
      })
    }
    expect((await dbState(s)).items).toEqual([])
  })

  it('rejects unknown and mistyped query parameters', async () => {
    const s = await start()
    const file = csv([HEADER, ['Q-1', '', 'part']])
    for (const query of ['?dry_run=maybe', '?dryrun=true']) {
      const res = await upload(s, 'csv', file, { query })
      expect({ query, status: res.status }).toEqual({ query, status: 400 })
      expect(res.body).toEqual({ error: 'bad_request', message: expect.any(String) })
    }
    expect((await dbState(s)).items).toEqual([])
  })

  it('answers 415 to a body of the wrong media type, and other routes still refuse text/csv', async () => {
    const s = await start()
    const file = csv([HEADER, ['T-1', '', 'part']])
    const cases: [Format, string][] = [
      ['csv', 'application/json'],
      ['csv', 'text/plain'],
      ['csv', 'application/xml'],
      ['csv', ODS_MIME_TYPE],
      ['csv', 'text/csv; charset=iso-8859-1'],
      ['ods', 'text/csv'],
    ]
    for (const [format, contentType] of cases) {
      const body = contentType === 'application/json' ? '{"a":1}' : file
      const res = await upload(s, format, body, { contentType })
      expect({ format, contentType, status: res.status }).toEqual({
        format,
        contentType,
        status: 415,
      })
      expect(res.body).toEqual({ error: 'unsupported_media_type', message: expect.any(String) })
    }
    const items = await api(s, 'POST', '/api/items', {
      token: s.tokens.editor,
      rawBody: file,
      headers: { 'content-type': 'text/csv' },
    })
    expect(items.status).toBe(415)
    expect((await dbState(s)).items).toEqual([])
  })

  it('accepts text/csv with charset=utf-8 and ODS sent as application/octet-stream', async () => {
    const s = await start()
    const a = await upload(s, 'csv', csv([HEADER, ['U-1', '', 'part']]), {
      contentType: 'text/csv; charset=UTF-8',
    })
    expect(a.status).toBe(200)
    const b = await upload(s, 'ods', writeOds(HEADER, [['U-2', '', 'part']]), {
      contentType: 'application/octet-stream',
    })
    expect(b.status).toBe(200)
    expect((await storedItems(s)).map((i) => i.part_number)).toEqual(['U-1', 'U-2'])
  })

  it('answers 413 to a file over import.max_size, raw or multipart, and writes nothing', async () => {
    // Given a server that takes imports of at most 2 KiB
    const s = await start({ import: { max_size: 2048 } })
    const rows: Cell[][] = [HEADER]
    for (let i = 0; rows.length < 200; i++) rows.push([`S-${i}`, 'padding text', 'part'])
    const big = csv(rows)
    expect(big.length).toBeGreaterThan(2048)

    // When a larger file is sent either way, for either format
    for (const res of [
      await upload(s, 'csv', big),
      await uploadForm(s, 'csv', big),
      await upload(s, 'ods', new Uint8Array(4096)),
      await uploadForm(s, 'ods', new Uint8Array(4096)),
    ]) {
      // Then it is refused with 413
      expect(res.status).toBe(413)
      expect(res.body).toEqual({ error: 'payload_too_large', message: expect.any(String) })
    }
    expect((await dbState(s)).items).toEqual([])
    // And a file under the limit still goes through
    const small = await upload(s, 'csv', csv(rows.slice(0, 10)))
    expect(small.status).toBe(200)
  })
})

describe('dry run', () => {
  it('answers what would change and writes and emits nothing', async () => {
    // Given an item and a subscriber
    const s = await start()
    await createItem(s, { part_number: 'D-1', description: 'old', item_type: 'part' })
    const events = subscribe(s)
    await events.waitForEvent('server.state')
    const before = await dbState(s)
    const file = csv([HEADER, ['D-1', 'new', 'part'], ['D-2', '', 'drawing'], ['D-3', '', 'part']])

    // When the sheet is imported with dry_run=true
    const dry = await upload(s, 'csv', file, { query: '?dry_run=true' })

    // Then the answer says what would happen
    expect(dry.status).toBe(200)
    expect(dry.body).toEqual({
      dry_run: true,
      created: 2,
      updated: 1,
      unchanged: 0,
      items: [
        { row: 2, part_number: 'D-1', action: 'updated' },
        { row: 3, part_number: 'D-2', action: 'created' },
        { row: 4, part_number: 'D-3', action: 'created' },
      ],
    })
    // And nothing was written
    expect(await dbState(s)).toEqual(before)

    // And a real import afterwards does exactly that, its events being the first the client sees
    const real = await upload(s, 'csv', file)
    expect(real.body).toEqual({ ...dry.body, dry_run: false })
    await events.waitForStoredCount(3)
    expect(events.stored.map((e) => e.type)).toEqual([
      'item.updated',
      'item.created',
      'item.created',
    ])
  })

  it('rejects bad rows exactly as a real import does', async () => {
    const s = await start()
    const res = await upload(s, 'csv', csv([HEADER, ['D-1', '', 'nope']]), {
      query: '?dry_run=true',
    })
    expect(res.status).toBe(400)
    expect(res.body.errors).toEqual([
      { row: 2, column: 'item_type', reason: expect.stringMatching(/^must be one of/) },
    ])
  })
})

describe('import events', () => {
  it('emits item.created with the item and item.updated with the changed fields, in file order', async () => {
    // Given two items and a subscriber
    const s = await start()
    await createItem(s, { part_number: 'E-2', description: 'same', item_type: 'part' })
    await createItem(s, {
      part_number: 'E-4',
      description: 'd',
      item_type: 'part',
      properties: { colour: 'red', size: 3 },
    })
    const events = subscribe(s)
    await events.waitForEvent('server.state')

    // When a sheet creates two items, leaves one alone and changes another's type and a property
    const res = await upload(
      s,
      'csv',
      csv([
        [...HEADER, 'colour'],
        ['E-3', 'third', 'document', 'blue'],
        ['E-2', 'same', 'part', ''],
        ['E-4', 'd', 'assembly', 'green'],
        ['E-1', '', 'part', ''],
      ]),
    )
    expect(res.body).toMatchObject({ created: 2, updated: 1, unchanged: 1 })

    // Then the stream carries one event per created or changed item, in file order, with
    // consecutive ids, and the log holds exactly those
    await events.waitForStoredCount(3)
    const first = events.stored[0]?.id as number
    const editor = actorNamed('test-editor')
    expect(events.stored).toEqual([
      {
        id: first,
        type: 'item.created',
        data: {
          part_number: 'E-3',
          description: 'third',
          item_type: 'document',
          properties: { colour: 'blue' },
          version: 1,
          actor: editor,
        },
      },
      {
        id: first + 1,
        type: 'item.updated',
        data: {
          part_number: 'E-4',
          version: 2,
          actor: editor,
          item_type: 'assembly',
          properties: { colour: 'green', size: 3 },
        },
      },
      {
        id: first + 2,
        type: 'item.created',
        data: {
          part_number: 'E-1',
          description: '',
          item_type: 'part',
          properties: {},
          version: 1,
          actor: editor,
        },
      },
    ])
    expect((await storedEvents(s)).slice(-3)).toEqual(
      events.stored.map((e) => ({ id: e.id, type: e.type, data: e.data })),
    )
  })

  it('emits nothing for an import that changes nothing', async () => {
    const s = await start()
    await createItem(s, { part_number: 'N-1', description: 'x', item_type: 'part' })
    const before = await dbState(s)
    const res = await upload(s, 'ods', writeOds(HEADER, [['N-1', 'x', 'part']]))
    expect(res.body).toMatchObject({ created: 0, updated: 0, unchanged: 1 })
    expect(await dbState(s)).toEqual(before)
  })

  // The heaviest test here (one import of 10,000 rows fans out 1,000,000 deliveries to clients in
  // this same process): about 25 s on a 2-core machine, hence its own timeout. With the default
  // events.memory_window (4096) the burst outruns the broker's window, so most of that time is
  // each subscriber paging the log; that path is the one production takes, so it is kept here.
  it('delivers a 10,000-row import to 100 SSE clients, all events in order, none dropped', async () => {
    // Given 100 subscribers on the live stream
    const s = await start()
    const subscribers = Array.from({ length: 100 }, () => subscribe(s))
    await vi.waitFor(() => expect(s.app.broker.subscriberCount).toBe(100), { timeout: 20_000 })
    await Promise.all(subscribers.map((c) => c.waitForEvent('server.state')))

    // When a 10,000-row sheet is imported
    const count = 10_000
    const partNumbers = Array.from(
      { length: count },
      (_, i) => `BULK-${String(i).padStart(5, '0')}`,
    )
    const rows: Cell[][] = [[...HEADER, 'batch']]
    // Shuffled a little, so that file order and part-number order differ
    for (let i = 0; i < count; i++) {
      const pn = partNumbers[(i * 7919) % count] as string
      rows.push([pn, `imported ${i}`, 'part', 'b1'])
    }
    const fileOrder = rows.slice(1).map((r) => r[0])
    const res = await upload(s, 'csv', csv(rows))
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ created: count, updated: 0, unchanged: 0 })

    // Then every client receives all 10,000 item.created, by increasing id, in file order
    const ids = (await storedEvents(s)).slice(-count).map((e) => e.id)
    expect(ids).toHaveLength(count)
    expect(ids[count - 1]! - ids[0]!).toBe(count - 1)
    const lastId = ids[ids.length - 1] as number
    // An O(1) check per event: 100 clients × 10,000 events
    await Promise.all(
      subscribers.map((c) =>
        c.waitFor((events) => events[events.length - 1]?.id === lastId, `event ${lastId}`),
      ),
    )
    for (const client of subscribers) {
      const stored = client.stored
      expect(stored).toHaveLength(count)
      expect(stored.map((e) => e.id)).toEqual(ids)
      expect(stored.every((e) => e.type === 'item.created')).toBe(true)
      expect(stored.map((e) => e.data.part_number)).toEqual(fileOrder)
      expect(client.events.some((e) => e.type === 'stream.reset')).toBe(false)
    }
  }, 120_000)
})

describe('ODS import', () => {
  it('reads a sheet saved by LibreOffice, keeping numbers and booleans typed', async () => {
    const s = await start()
    const file = readFileSync(new URL('./fixtures/libreoffice.ods', import.meta.url))
    const events = subscribe(s)
    await events.waitForEvent('server.state')
    const res = await upload(s, 'ods', file)
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ created: 3, updated: 0, unchanged: 0 })
    // One item.created per row, carrying the typed properties
    await events.waitForStoredCount(3)
    expect(events.stored.map((e) => [e.type, e.data.part_number])).toEqual([
      ['item.created', 'LO-100'],
      ['item.created', 'LO-101'],
      ['item.created', 'LO-103'],
    ])
    expect(events.stored[1]?.data.properties).toEqual({ mass_kg: 3, rohs: false })
    expect(await storedItems(s)).toEqual([
      {
        part_number: 'LO-100',
        description: 'Ø 12 mm – Schraube «M3» 🔩\nsecond line with a link',
        item_type: 'part',
        properties: {
          mass_kg: 0.125,
          rohs: true,
          tolerance: 0.05,
          price: 12.5,
          released: '03/01/24 12:00 AM',
          note: 'say "hi", & <bye>',
        },
      },
      {
        part_number: 'LO-101',
        description: '  two leading, double  space, trailing ',
        item_type: 'assembly',
        properties: { mass_kg: 3, rohs: false },
      },
      {
        part_number: 'LO-103',
        description: 'document',
        item_type: 'document',
        properties: { note: 'after a gap' },
      },
    ])
  })

  it('takes the file as multipart/form-data too, and lists bad rows by spreadsheet row', async () => {
    const s = await start()
    const ok = await uploadForm(s, 'ods', writeOds(HEADER, [['F-1', '', 'part']]))
    expect(ok.status).toBe(200)
    const bad = await uploadForm(
      s,
      'ods',
      writeOds(HEADER, [
        ['F-2', '', 'part'],
        [null, null, null],
        ['F-2', '', 'gizmo'],
      ]),
    )
    expect(bad.status).toBe(400)
    expect(bad.body.errors).toEqual([
      { row: 4, column: 'part_number', reason: 'repeats row 2' },
      { row: 4, column: 'item_type', reason: expect.stringMatching(/^must be one of/) },
    ])
    expect((await storedItems(s)).map((i) => i.part_number)).toEqual(['F-1'])
  })
})

/** Items whose values test every quoting and typing rule of both formats. */
const TRICKY_ITEMS = [
  {
    part_number: 'RT-1',
    description: 'Ø 12 mm – Schraube «M3» 🔩',
    item_type: 'part',
    properties: {
      material: 'steel, zinc plated',
      note: 'say "hello", then \'bye\'',
      multi: 'line one\nline two\r\nline three',
      padded: '  spaced  out  ',
      mass_g: 12.5,
      count: 3,
      zero: 0,
      big: 1e21,
      tiny: -0.000001,
      rohs: true,
      obsolete: false,
      dims: { w: 10, h: [1, 2, { deep: 'x, "y"' }] },
      list: ['a', 'b'],
      empty: '',
      nothing: null,
      number_as_text: '42',
      json_as_text: '{"a":1}',
      unicode: '日本語 – ü 😀',
      tab: 'a\tb',
      xml: '<tag attr="1"> & </tag>',
    },
  },
  {
    part_number: 'RT-2',
    description: 'comma, "quote"\nnewline',
    item_type: 'assembly',
    properties: { material: 'alu', count: 1 },
  },
  { part_number: 'RT-3', description: '', item_type: 'drawing', properties: {} },
  {
    part_number: 'rt.4_x-Y',
    description: ' leading and trailing ',
    item_type: 'document',
    properties: {},
  },
  {
    // Text a spreadsheet would run as a formula, and text that merely starts with a quote
    part_number: 'RT-5',
    description: '=HYPERLINK("http://evil.example","click")',
    item_type: 'part',
    properties: {
      plus: '+1+2',
      minus: '-A1',
      at: '@SUM(A1:A2)',
      tab: '\t=1',
      cr: '\r=1',
      quoted: "'already quoted",
      quoted_formula: "'=1+2",
      negative_text: '-5',
      negative: -5,
    },
  },
]

describe('GET /api/export/items.csv and items.ods', () => {
  it('streams every item as CSV with the item columns, then the sorted property names', async () => {
    const s = await start()
    await createItem(s, {
      part_number: 'X-2',
      description: 'b',
      item_type: 'part',
      properties: { zeta: 1, alpha: 'a,b' },
    })
    await createItem(s, { part_number: 'X-1', description: 'a', item_type: 'drawing' })
    const res = await download(s, 'csv')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8')
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="items.csv"')
    expect(new TextDecoder().decode(res.bytes)).toBe(
      'part_number,description,item_type,alpha,zeta\nX-1,a,drawing,,\nX-2,b,part,"a,b",1\n',
    )
  })

  it('streams every item as ODS with numbers and booleans typed', async () => {
    const s = await start()
    await createItem(s, {
      part_number: 'X-1',
      description: 'a',
      item_type: 'part',
      properties: { n: 2.5, ok: true, obj: { a: 1 }, s: 'text' },
    })
    const res = await download(s, 'ods')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe(ODS_MIME_TYPE)
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="items.ods"')
    expect(readOds(res.bytes)).toEqual({
      header: [...HEADER, 'n', 'obj', 'ok', 's'],
      rows: [{ row: 2, cells: ['X-1', 'a', 'part', 2.5, '{"a":1}', true, 'text'] }],
    })
  })

  it('exports an empty database as a header row', async () => {
    const s = await start()
    expect(new TextDecoder().decode((await download(s, 'csv')).bytes)).toBe(
      'part_number,description,item_type\n',
    )
    expect(readOds((await download(s, 'ods')).bytes)).toEqual({ header: HEADER, rows: [] })
  })

  for (const format of ['csv', 'ods'] as const) {
    it(`imports its own ${format.toUpperCase()} export without changing anything`, async () => {
      // Given items with commas, quotes, newlines, outer spaces, non-ASCII text, numbers,
      // booleans, objects and empty strings in their fields
      const s = await start()
      for (const item of TRICKY_ITEMS) await createItem(s, item)
      const before = await dbState(s)

      // When the export is imported again
      const exported = await download(s, format)
      expect(exported.status).toBe(200)
      const res = await upload(s, format, exported.bytes)

      // Then every row is unchanged, and the database and event log are exactly as they were
      expect(res.status).toBe(200)
      expect(res.body).toMatchObject({ created: 0, updated: 0, unchanged: TRICKY_ITEMS.length })
      expect(await dbState(s)).toEqual(before)
    })
  }

  it('writes CSV text cells that a spreadsheet would run as formulas with a leading quote', async () => {
    // Given an item whose description and properties begin like formulas
    const s = await start()
    await createItem(s, TRICKY_ITEMS.find((item) => item.part_number === 'RT-5') as never)
    // When it is exported as CSV
    const text = new TextDecoder().decode((await download(s, 'csv')).bytes)
    // Then no cell of the file begins with a formula character; each such cell is quoted
    const [, row] = parse(text) as string[][]
    expect(row?.filter((cell) => /^[=+\-@\t\r]/.test(cell) && cell !== '-5')).toEqual([])
    expect(row).toContain(`'=HYPERLINK("http://evil.example","click")`)
    expect(row).toContain("'+1+2")
    expect(row).toContain("'\t=1")
    expect(row).toContain("''=1+2")
    expect(row).toContain("'already quoted")
    expect(row?.filter((cell) => cell === '-5')).toHaveLength(2)
  })

  it('imports an export that LibreOffice opened and saved again without changing anything', async () => {
    // Given the items of the fixture, whose ODS export LibreOffice re-saved (test/fixtures)
    const s = await start()
    const items = JSON.parse(
      readFileSync(
        new URL('./fixtures/export-resaved-by-libreoffice.json', import.meta.url),
        'utf8',
      ),
    ) as Record<string, unknown>[]
    for (const item of items) await createItem(s, item)
    const before = await dbState(s)
    // When LibreOffice's file is imported
    const file = readFileSync(
      new URL('./fixtures/export-resaved-by-libreoffice.ods', import.meta.url),
    )
    const res = await upload(s, 'ods', file)
    // Then nothing changed
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ created: 0, updated: 0, unchanged: items.length })
    expect(await dbState(s)).toEqual(before)
  })

  it('creates the same items in an empty database from a CSV export, as text where CSV has no types', async () => {
    const source = await start()
    for (const item of TRICKY_ITEMS.slice(0, 3)) await createItem(source, item)
    const exported = await download(source, 'csv')
    // the same server with no items stands in for an empty database
    const s = await start()
    await s.app.db.query('DELETE FROM items')
    const res = await upload(s, 'csv', exported.bytes)
    expect(res.body).toMatchObject({ created: 3 })
    const [first] = await storedItems(s)
    expect(first?.description).toBe(TRICKY_ITEMS[0]?.description)
    expect(first?.properties).toMatchObject({
      multi: 'line one\nline two\r\nline three',
      padded: '  spaced  out  ',
      mass_g: '12.5',
      rohs: 'true',
      dims: '{"h":[1,2,{"deep":"x, \\"y\\""}],"w":10}',
    })
    expect(first?.properties).not.toHaveProperty('empty')
  })

  it('pages through more items than one page holds, in part-number order', async () => {
    // Given 1,200 items (more than two export pages)
    const s = await start()
    const rows: Cell[][] = [[...HEADER, 'i']]
    for (let i = 1200; i-- > 0;) rows.push([`PG-${String(i).padStart(4, '0')}`, `#${i}`, 'part', i])
    expect((await upload(s, 'csv', csv(rows))).body.created).toBe(1200)
    // When both exports are read
    const fromCsv = await readCsv((await download(s, 'csv')).bytes)
    const fromOds = readOds((await download(s, 'ods')).bytes)
    // Then they hold every item once, sorted
    const expected = rows
      .slice(1)
      .map((r) => r[0])
      .sort()
    expect(fromCsv.rows.map((r) => r.cells[0])).toEqual(expected)
    expect(fromOds.rows.map((r) => r.cells[0])).toEqual(expected)
  })
})

describe('roles and modes', () => {
  it('refuses imports and exports without a token (401) and imports to a viewer (403)', async () => {
    const s = await start()
    const file = csv([HEADER, ['R-1', '', 'part']])
    expect((await upload(s, 'csv', file, { token: null })).status).toBe(401)
    expect((await upload(s, 'ods', writeOds(HEADER, []), { token: null })).status).toBe(401)
    for (const format of ['csv', 'ods'] as const) {
      const res = await fetch(`${s.url}/api/export/items.${format}`)
      expect(res.status).toBe(401)
      expect(await res.json()).toEqual({ error: 'unauthorized', message: expect.any(String) })
    }
    const viewerCsv = await upload(s, 'csv', file, { token: s.tokens.viewer })
    expect(viewerCsv.status).toBe(403)
    expect(viewerCsv.body).toEqual({ error: 'forbidden', message: 'this needs the editor role' })
    expect((await upload(s, 'ods', writeOds(HEADER, []), { token: s.tokens.viewer })).status).toBe(
      403,
    )
    expect((await dbState(s)).items).toEqual([])
  })

  it('lets a viewer export, and an editor import', async () => {
    const s = await start()
    expect((await upload(s, 'csv', csv([HEADER, ['R-1', '', 'part']]))).status).toBe(200)
    for (const format of ['csv', 'ods'] as const) {
      expect((await download(s, format, s.tokens.viewer)).status).toBe(200)
    }
  })

  it('answers imports with 503 server_read_only in read-only mode, while exports keep working', async () => {
    // Given an item and a server switched to read-only
    const s = await start()
    await createItem(s, { part_number: 'RO-1', description: 'kept', item_type: 'part' })
    const mode = await api(s, 'PUT', '/api/admin/mode', {
      token: s.tokens.admin,
      body: { read_only: true },
    })
    expect(mode.status).toBe(200)
    try {
      const before = await dbState(s)
      const file = csv([HEADER, ['RO-1', 'changed', 'part'], ['RO-2', '', 'part']])

      // When imports are attempted, raw or multipart, real or dry
      for (const res of [
        await upload(s, 'csv', file),
        await upload(s, 'csv', file, { query: '?dry_run=true' }),
        await uploadForm(s, 'csv', file),
        await upload(s, 'ods', writeOds(HEADER, [['RO-2', '', 'part']])),
      ]) {
        // Then each is refused with 503 and Retry-After
        expect(res.status).toBe(503)
        expect(res.body).toEqual({ error: 'server_read_only', message: expect.any(String) })
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0)
      }
      // And nothing changed
      expect(await dbState(s)).toEqual(before)
      // And both exports still answer with the data
      const exported = await download(s, 'csv')
      expect(exported.status).toBe(200)
      expect((await readCsv(exported.bytes)).rows).toEqual([
        { row: 2, cells: ['RO-1', 'kept', 'part'] },
      ])
      expect(readOds((await download(s, 'ods')).bytes).rows).toHaveLength(1)
    } finally {
      await api(s, 'PUT', '/api/admin/mode', { token: s.tokens.admin, body: { read_only: false } })
    }
  })
})
