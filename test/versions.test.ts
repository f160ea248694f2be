import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createToken } from '../src/domain/tokens.js'
import { postMultipart } from './support/multipart.js'
import { api, startServer, type TestServer } from './support/server.js'
import { closeStreams, openGreetedStream } from './support/sseClient.js'

/**
 * No lost updates (README, "API"): every change to an item raises its `version`, GET answers it
 * as ETag, and a write with a stale If-Match is refused with 412 and the item as it is, changing
 * nothing. Without If-Match writes go ahead as they always did.
 */

let server: TestServer
let otherEditor: string
let seq = 0
/** A part number of its own for each test: they share one server. */
const fresh = (prefix: string) => `${prefix}-${++seq}`

beforeAll(async () => {
  server = await startServer()
  otherEditor = (await createToken(server.app.db, { name: 'editor-b', role: 'editor' })).token
})
afterAll(() => server.close())
afterEach(() => closeStreams())

const create = async (pn: string, itemType = 'part') => {
  const res = await api(server, 'POST', '/api/items', {
    token: server.tokens.editor,
    body: { part_number: pn, item_type: itemType, description: 'first' },
  })
  expect(res.status).toBe(201)
  return res
}

const read = (pn: string) => api(server, 'GET', `/api/items/${pn}`, { token: server.tokens.viewer })

/** What a refused write must leave as it was: the item's row and the whole event log. */
async function snapshot(pn: string) {
  const db = server.app.db
  const item = (await db.query('SELECT * FROM items WHERE part_number = $1', [pn])).rows
  const bom = (await db.query('SELECT * FROM bom_lines WHERE parent = $1', [pn])).rows
  const revisions = (await db.query('SELECT * FROM revisions WHERE part_number = $1', [pn])).rows
  const events = (await db.query('SELECT max(id)::int AS last FROM events')).rows
  return { item, bom, revisions, events }
}

describe('item versions', () => {
  it('start at 1 and rise with every change, as the ETag and every event about the item say', async () => {
    // Given an assembly, a part for its BOM, and a subscriber
    const pn = fresh('ASM')
    const child = fresh('P')
    const events = await openGreetedStream(server, { query: { part_number: pn } })
    const created = await create(pn, 'assembly')
    await create(child)
    expect(created.body.version).toBe(1)
    expect(created.headers.get('etag')).toBe('"1"')
    const editor = { token: server.tokens.editor }

    // When it is patched, gets a BOM line that is then changed and removed, and a revision
    const steps = [
      () => api(server, 'PATCH', `/api/items/${pn}`, { ...editor, body: { description: 'x' } }),
      () =>
        api(server, 'POST', `/api/items/${pn}/bom`, { ...editor, body: { child, quantity: 1 } }),
      () =>
        api(server, 'PUT', `/api/items/${pn}/bom/${child}`, { ...editor, body: { quantity: 2 } }),
      () => api(server, 'DELETE', `/api/items/${pn}/bom/${child}`, editor),
      () =>
        api(server, 'POST', `/api/items/${pn}/revisions`, { ...editor, body: { comment: 'r' } }),
    ]
    for (const [i, step] of steps.entries()) {
      expect((await step()).status).toBeLessThan(300)
      // Then each change raises the version by one, on GET and in its ETag
      const now = await read(pn)
      expect(now.body.version).toBe(i + 2)
      expect(now.headers.get('etag')).toBe(`"${i + 2}"`)
    }

    // And a PATCH that changes nothing leaves it
    const same = await api(server, 'PATCH', `/api/items/${pn}`, {
      ...editor,
      body: { description: 'x' },
    })
    expect(same.body.version).toBe(6)

    // And every event about the item carries the version it made
    await events.waitForStoredCount(6)
    expect(events.stored.map((e) => [e.type, e.data.version])).toEqual([
      ['item.created', 1],
      ['item.updated', 2],
      ['item.updated', 3],
      ['item.updated', 4],
      ['item.updated', 5],
      ['revision.created', 6],
    ])
  })

  it('rise with an import that changes the item, and not with one that leaves it', async () => {
    const pn = fresh('IMP')
    await create(pn)
    const sheet = (description: string) =>
      api(server, 'POST', '/api/import/csv', {
        token: server.tokens.editor,
        rawBody: `part_number,description,item_type\n${pn},${description},part\n`,
        headers: { 'content-type': 'text/csv' },
      })
    expect((await sheet('second')).status).toBe(200)
    expect((await read(pn)).body.version).toBe(2)
    expect((await sheet('second')).body.unchanged).toBe(1)
    expect((await read(pn)).body.version).toBe(2)
  })
})

describe('If-Match', () => {
  it('lets one of two editors who read the same version win, and refuses the other with the winner’s item', async () => {
    // Given two editors who both read version 1 of an item
    const pn = fresh('DUO')
    await create(pn)
    const [a, b] = await Promise.all([read(pn), read(pn)])
    const events = await openGreetedStream(server, { query: { part_number: pn } })

    // When both save their own change at once, each against the version they read
    const save = (token: string, description: string, etag: string | null) =>
      api(server, 'PATCH', `/api/items/${pn}`, {
        token,
        body: { description },
        headers: { 'if-match': etag ?? '' },
      })
    const answers = await Promise.all([
      save(server.tokens.editor, 'by A', a.headers.get('etag')),
      save(otherEditor, 'by B', b.headers.get('etag')),
    ])

    // Then exactly one is saved, and the other is told so, with the item as the winner left it
    const statuses = answers.map((r) => r.status).sort()
    expect(statuses).toEqual([200, 412])
    const won = answers.find((r) => r.status === 200)
    const lost = answers.find((r) => r.status === 412)
    expect(lost?.body).toEqual({
      error: 'precondition_failed',
      message: expect.stringContaining('version 2'),
      current: won?.body,
    })
    expect(lost?.headers.get('etag')).toBe('"2"')
    const now = await read(pn)
    expect(now.body).toEqual(won?.body)
    expect(now.body.version).toBe(2)

    // And only the saved change is an event
    await events.waitForEvent('item.updated')
    await api(server, 'DELETE', `/api/items/${pn}`, { token: server.tokens.editor })
    await events.waitForEvent('item.deleted')
    expect(events.stored.map((e) => e.data.description ?? e.type)).toEqual([
      won?.body.description,
      'item.deleted',
    ])
  })

  it('refuses every write against a stale version with 412, changing nothing', async () => {
    // Given an assembly at version 2 with one BOM line, and an editor holding version 1
    const pn = fresh('STALE')
    const child = fresh('P')
    await create(pn, 'assembly')
    await create(child)
    const editor = server.tokens.editor
    await api(server, 'POST', `/api/items/${pn}/bom`, {
      token: editor,
      body: { child, quantity: 1 },
    })
    const stale = { token: editor, headers: { 'if-match': '"1"' } }
    const before = await snapshot(pn)

    // When that editor writes in every way an item can be written to
    const answers = [
      await api(server, 'PATCH', `/api/items/${pn}`, { ...stale, body: { description: 'x' } }),
      await api(server, 'DELETE', `/api/items/${pn}`, stale),
      await api(server, 'POST', `/api/items/${pn}/bom`, {
        ...stale,
        body: { child: fresh('NONE'), quantity: 1 },
      }),
      await api(server, 'PUT', `/api/items/${pn}/bom/${child}`, {
        ...stale,
        body: { quantity: 3 },
      }),
      await api(server, 'DELETE', `/api/items/${pn}/bom/${child}`, stale),
      await api(server, 'POST', `/api/items/${pn}/revisions`, { ...stale, body: { comment: 'c' } }),
      await postMultipart(
        `${server.url}/api/items/${pn}/revisions`,
        editor,
        [{ name: 'file', filename: 'a.step', data: Buffer.from('ISO-10303-21;') }],
        stale.headers,
      ),
    ]

    // Then each is refused with the item as it is, and nothing changed, no file was kept
    for (const res of answers) {
      expect(res.status).toBe(412)
      expect(res.body.error).toBe('precondition_failed')
      expect(res.body.current).toMatchObject({ part_number: pn, version: 2 })
    }
    expect(await snapshot(pn)).toEqual(before)
    expect(readdirSync(join(server.dataDir, 'files'), { recursive: true })).not.toContainEqual(
      expect.stringContaining(pn),
    )
  })

  it('lets a write through with the current version, a list holding it, or *', async () => {
    const pn = fresh('OK')
    await create(pn)
    const patch = (ifMatch: string, description: string) =>
      api(server, 'PATCH', `/api/items/${pn}`, {
        token: server.tokens.editor,
        body: { description },
        headers: { 'if-match': ifMatch },
      })
    expect((await patch('"1"', 'a')).headers.get('etag')).toBe('"2"')
    expect((await patch('"7", "2"', 'b')).body.version).toBe(3)
    expect((await patch('*', 'c')).body.version).toBe(4)
    // A weak tag never matches: If-Match compares strongly (RFC 9110).
    expect((await patch('W/"4"', 'd')).status).toBe(412)
    expect((await read(pn)).body.description).toBe('c')
  })

  it('refuses a malformed If-Match with 400, and a missing item is still 404', async () => {
    const pn = fresh('BAD')
    await create(pn)
    const bad = await api(server, 'PATCH', `/api/items/${pn}`, {
      token: server.tokens.editor,
      body: { description: 'x' },
      headers: { 'if-match': '3' },
    })
    expect(bad.status).toBe(400)
    expect(bad.body).toEqual({ error: 'bad_request', message: expect.stringContaining('if-match') })
    const missing = await api(server, 'DELETE', `/api/items/${fresh('NONE')}`, {
      token: server.tokens.editor,
      headers: { 'if-match': '"1"' },
    })
    expect(missing.status).toBe(404)
  })
})
