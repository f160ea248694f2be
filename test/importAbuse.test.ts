import { crc32 } from 'node:zlib'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { csvLines } from '../src/sheets/csv.js'
import {
  deflateContentPiece,
  ODS_CONTENT_TAIL,
  ODS_MIME_TYPE,
  odsContentHead,
  odsRowsXml,
  OdsZip,
} from '../src/sheets/ods.js'
import { DEFAULT_SHEET_LIMITS } from '../src/sheets/sheet.js'
import { api, startServer, type TestServer } from './support/server.js'
import { closeStreams, openGreetedStream } from './support/sseClient.js'
import { claimingSize } from './support/zipHeaders.js'

/**
 * Hostile imports (README, "Import and export"): files built to hold the event loop — a CSV of
 * empty lines, one huge cell, thousands of columns, ODS files whose content.xml inflates to
 * hundreds of megabytes or whose zip headers lie — are refused with a 4xx, and a valid
 * 100,000-row import succeeds, while /health answers and a live subscriber receives an event that
 * another request wrote. That they were served during the import is shown by the order of the
 * answers: a server that parsed on its event loop would answer them only after the import.
 * The files are generated here, not committed.
 */

let s: TestServer

beforeAll(async () => {
  s = await startServer()
})

afterAll(async () => {
  closeStreams()
  await s?.close()
})

beforeEach(async () => {
  await s.app.db.query('DELETE FROM items')
})

const HEADER = 'part_number,description,item_type\n'
let liveItems = 0

/**
 * Posts `file` and, while that request is pending, asks /health and writes an item through the
 * API, waiting for a live subscriber to receive its event. Resolves with the import's answer and
 * the order in which the three things happened.
 */
async function importWhileServing(format: 'csv' | 'ods', file: Uint8Array) {
  const stream = await openGreetedStream(s)
  const order: string[] = []
  const partNumber = `LIVE-${++liveItems}`
  const imported = fetch(`${s.url}/api/import/${format}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${s.tokens.editor}`,
      'content-type': format === 'csv' ? 'text/csv' : ODS_MIME_TYPE,
    },
    body: file,
  }).then(async (res) => {
    const answer = { status: res.status, body: (await res.json()) as Record<string, unknown> }
    order.push('import answered')
    return answer
  })
  const health = fetch(`${s.url}/health`).then(async (res) => {
    order.push('health answered')
    return res.status
  })
  const live = (async () => {
    const res = await api(s, 'POST', '/api/items', {
      token: s.tokens.editor,
      body: { part_number: partNumber, item_type: 'part' },
    })
    expect(res.status).toBe(201)
    await stream.waitForEvent('item.created', (e) => e.data.part_number === partNumber)
    order.push('event received')
  })()
  const [answer, healthStatus] = await Promise.all([imported, health, live])
  stream.close()
  expect(healthStatus).toBe(200)
  return { ...answer, order }
}

/** Nothing of the file was written: only the item written meanwhile exists. */
async function onlyLiveItems(): Promise<void> {
  const { rows } = await s.app.db.query<{ part_number: string }>('SELECT part_number FROM items')
  expect(rows.every((r) => r.part_number.startsWith('LIVE-'))).toBe(true)
}

// Sorted, as the assertions sort what happened first.
const DURING = ['event received', 'health answered']

/**
 * The import was refused with 400 invalid_import saying `message`, after /health had answered
 * and the live subscriber had its event, and nothing of the file was written.
 */
async function expectRefusedWhileServing(
  res: Awaited<ReturnType<typeof importWhileServing>>,
  message: string | RegExp,
): Promise<void> {
  expect(res.status).toBe(400)
  expect(res.body.error).toBe('invalid_import')
  if (typeof message === 'string') expect(res.body.message).toBe(message)
  else expect(res.body.message).toMatch(message)
  expect(res.order.slice(0, 2).sort()).toEqual(DURING)
  await onlyLiveItems()
}

/**
 * An ODS file whose content.xml is `head`, then `block` repeated `times`, then the end of the
 * document: a file of about a thousandth of what it inflates to. A piece of content.xml refers
 * to nothing before it, so one deflated block serves every copy.
 */
function odsOf(head: string, block: string, times: number): Buffer {
  const chunks: Uint8Array[] = []
  const zip = new OdsZip((c) => chunks.push(c))
  let before = deflateContentPiece(head, { crc: 0, size: 0 }, false)
  zip.piece(before, false)
  const text = Buffer.from(block)
  const { bytes } = deflateContentPiece(block, { crc: 0, size: 0 }, false)
  for (let i = 0; i < times; i++) {
    before = { bytes, crc: crc32(text, before.crc), size: before.size + text.length }
    zip.piece(before, false)
  }
  zip.piece(deflateContentPiece(ODS_CONTENT_TAIL, before, true), true)
  return Buffer.concat(chunks)
}

/** content.xml up to the first data row of a sheet with the item columns. */
const ODS_HEAD = odsContentHead(3) + odsRowsXml([['part_number', 'description', 'item_type']])
/** About 1 MiB of data rows. */
const ODS_ROWS = odsRowsXml([['P-1', 'x', 'part']]).repeat(9000)

describe('hostile CSV imports', () => {
  it('refuses 1 MiB of empty lines with 400 while /health and a live subscriber are served', async () => {
    const file = Buffer.from(HEADER + '\n'.repeat(1 << 20))
    const res = await importWhileServing('csv', file)
    expect(Object.keys(res.body).sort()).toEqual(['error', 'message'])
    await expectRefusedWhileServing(
      res,
      `the sheet has more than ${DEFAULT_SHEET_LIMITS.maxRows} data rows`,
    )
  })

  it('refuses 32 MiB of empty lines (import.max_size) with 400 the same way', async () => {
    const file = Buffer.from(HEADER + '\n'.repeat(s.config.import.max_size - HEADER.length))
    const res = await importWhileServing('csv', file)
    await expectRefusedWhileServing(
      res,
      `the sheet has more than ${DEFAULT_SHEET_LIMITS.maxRows} data rows`,
    )
  })

  it('refuses one cell of 30 MiB with 400 naming its row', async () => {
    const file = Buffer.from(`${HEADER}P-1,"${'x'.repeat(30 << 20)}",part\n`)
    const res = await importWhileServing('csv', file)
    await expectRefusedWhileServing(
      res,
      /^row 2 is longer than \d+ characters; a cell holds at most/,
    )
  })

  it('refuses a row with more columns than the limit with 400, after 20,000 good rows', async () => {
    const good = Array.from({ length: 20_000 }, (_, i) => `G-${i},x,part\n`).join('')
    const file = Buffer.from(`${HEADER}${good}P-1,x,part${',y'.repeat(100_000)}\n`)
    const res = await importWhileServing('csv', file)
    await expectRefusedWhileServing(
      res,
      `the sheet has more than ${DEFAULT_SHEET_LIMITS.maxColumns} columns`,
    )
  })
})

describe('hostile ODS imports', () => {
  it('refuses an ODS of about 1 MB whose content.xml inflates to 250 MB, with 400', async () => {
    const file = odsOf(ODS_HEAD, ODS_ROWS, Math.ceil(250e6 / ODS_ROWS.length))
    expect(file.length).toBeLessThan(2 << 20)
    const res = await importWhileServing('ods', file)
    await expectRefusedWhileServing(
      res,
      `the sheet has more than ${DEFAULT_SHEET_LIMITS.maxRows} data rows`,
    )
  })

  it('refuses an ODS whose zip headers claim 200 bytes for 300 MiB, with 400', async () => {
    const file = claimingSize(odsOf(ODS_HEAD, ODS_ROWS, 300), 200)
    const res = await importWhileServing('ods', file)
    await expectRefusedWhileServing(
      res,
      `the sheet has more than ${DEFAULT_SHEET_LIMITS.maxRows} data rows`,
    )
  })

  it('refuses an ODS whose content.xml is honestly larger than the limit, before inflating it', async () => {
    const times = Math.ceil((DEFAULT_SHEET_LIMITS.maxContentBytes + 1) / ODS_ROWS.length)
    const res = await importWhileServing('ods', odsOf(ODS_HEAD, ODS_ROWS, times))
    expect(res.status).toBe(400)
    expect(res.body.message).toMatch(
      new RegExp(
        `^the spreadsheet's content.xml is \\d+ bytes uncompressed; at most ${DEFAULT_SHEET_LIMITS.maxContentBytes} are read$`,
      ),
    )
    await onlyLiveItems()
  })
})

/** A valid sheet of `count` new items BIG-000000…. */
function bigSheet(count: number): Buffer {
  const rows = [['part_number', 'description', 'item_type', 'mass_g']]
  for (let i = 0; i < count; i++) {
    rows.push([`BIG-${String(i).padStart(6, '0')}`, `Bracket ${i}, rev 1`, 'part', `${i % 997}`])
  }
  return Buffer.from(csvLines(rows))
}

describe('a large valid import', () => {
  it('imports 100,000 rows in one transaction while /health and a live subscriber are served', async () => {
    // Given a valid sheet of 100,000 new items
    const file = bigSheet(100_000)
    const { rows: before } = await s.app.db.query<{ last: number }>(
      'SELECT coalesce(max(id), 0)::int AS last FROM events',
    )
    // When it is imported while another request writes an item
    const res = await importWhileServing('csv', file)
    // Then it succeeds, the other request having been served during it
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ created: 100_000, updated: 0, unchanged: 0 })
    expect(res.order.slice(0, 2).sort()).toEqual(DURING)
    // And every item and its event were written
    const { rows: counts } = await s.app.db.query<{ items: number; events: number }>(
      `SELECT (SELECT count(*)::int FROM items WHERE part_number LIKE 'BIG-%') AS items,
              (SELECT count(*)::int FROM events WHERE id > $1 AND part_number LIKE 'BIG-%') AS events`,
      [before[0]?.last ?? 0],
    )
    expect(counts[0]).toEqual({ items: 100_000, events: 100_000 })
  }, 120_000)
})

describe('import.timeout', () => {
  let own: TestServer | undefined

  afterEach(async () => {
    await own?.close()
    own = undefined
  })

  // Reading 100,000 rows takes the worker a few hundred milliseconds and writing them several
  // seconds, so the first budget ends while the worker reads and the second while rows are
  // written (with a margin of about 2x either way).
  for (const [budget, part] of [
    ['50ms', 'reading the file'],
    ['1500ms', 'writing the rows'],
  ] as const) {
    it(`refuses an import still ${part} after import.timeout (${budget}) with 422, writing nothing`, async () => {
      // Given a server whose imports may take `budget`
      own = await startServer({ overrides: { import: { timeout: budget } } })
      const events = async () =>
        (await own!.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM events')).rows[0]
      const before = await events()
      // When a large file is imported
      const res = await fetch(`${own.url}/api/import/csv`, {
        method: 'POST',
        headers: { authorization: `Bearer ${own.tokens.editor}`, 'content-type': 'text/csv' },
        body: bigSheet(100_000),
      })
      // Then it is refused as too slow, and neither items nor events were written
      expect(res.status).toBe(422)
      expect(await res.json()).toEqual({
        error: 'import_timeout',
        message: expect.stringMatching(/^the import took longer than import.timeout \(\d+ ms\)/),
      })
      const { rows } = await own.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM items')
      expect(rows[0]?.n).toBe(0)
      expect(await events()).toEqual(before)
    }, 60_000)
  }
})
