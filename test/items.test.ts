import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createItem, ITEM_TYPES, type ItemType } from '../src/domain/items.js'
import { actorNamed, asSystem, api, startServer, type TestServer } from './support/server.js'
import { openGreetedStream, closeStreams } from './support/sseClient.js'

/**
 * Items API: CRUD with its events, keyset pagination with filters, and bad input (README "API", "Bad input").
 * "Nothing changed" is checked against the database itself (items, tokens, event log), because
 * a mutation and its event row commit in one transaction.
 */

type Server = TestServer

async function dbState(server: Server) {
  const db = server.app.db
  const items = (await db.query('SELECT * FROM items ORDER BY part_number')).rows
  const tokens = (
    await db.query('SELECT id::int AS id, name, role, token_hash FROM api_tokens ORDER BY id')
  ).rows
  const events = (
    await db.query<{ count: number; last: number }>(
      'SELECT count(*)::int AS count, coalesce(max(id), 0)::int AS last FROM events',
    )
  ).rows[0]
  return { items, tokens, events, mode: server.app.modes.mode }
}

async function eventCount(server: Server): Promise<number> {
  return (await dbState(server)).events?.count ?? -1
}

function expectErrorBody(body: unknown, code?: string): void {
  expect(body).toEqual({ error: expect.any(String), message: expect.any(String) })
  if (code) expect((body as { error: string }).error).toBe(code)
}

describe('item round trip', () => {
  let server: Server

  beforeEach(async () => {
    server = await startServer()
  })
  afterEach(async () => {
    closeStreams()
    await server.close()
  })

  /** Subscribes from the start of the (empty) log, so no event can slip past the subscription. */
  const subscribe = () => openGreetedStream(server, { lastEventId: 0 })

  it('creates, reads, updates and deletes an item, each mutation emitting exactly one event', async () => {
    // Given an editor and a subscriber on the event stream
    const events = await subscribe()
    const token = server.tokens.editor

    // When the editor creates an item
    const created = await api(server, 'POST', '/api/items', {
      token,
      body: {
        part_number: 'BRK-100',
        description: 'Mounting bracket',
        item_type: 'part',
        properties: { material: 'steel', mass_g: 120 },
      },
    })
    // Then the answer is 201 with the stored item
    expect(created.status).toBe(201)
    expect(created.body).toEqual({
      part_number: 'BRK-100',
      description: 'Mounting bracket',
      item_type: 'part',
      properties: { material: 'steel', mass_g: 120 },
      version: 1,
      created_at: expect.any(String),
      created_by: actorNamed('test-editor'),
      updated_at: expect.any(String),
      updated_by: actorNamed('test-editor'),
    })
    expect(new Date(created.body.created_at).toISOString()).toBe(created.body.created_at)
    expect(created.body.updated_at).toBe(created.body.created_at)
    expect(await eventCount(server)).toBe(1)

    // And reading it back gives the same body
    const read = await api(server, 'GET', '/api/items/BRK-100', { token: server.tokens.viewer })
    expect(read.status).toBe(200)
    expect(read.body).toEqual(created.body)

    // When the editor patches it: new description, same type, new property set
    const patched = await api(server, 'PATCH', '/api/items/BRK-100', {
      token,
      body: { description: 'Welded bracket', item_type: 'part', properties: { finish: 'zinc' } },
    })
    // Then properties are replaced wholly, not merged
    expect(patched.status).toBe(200)
    expect(patched.body).toEqual({
      ...created.body,
      description: 'Welded bracket',
      properties: { finish: 'zinc' },
      version: 2,
      updated_at: expect.any(String),
    })
    expect(Date.parse(patched.body.updated_at)).toBeGreaterThanOrEqual(
      Date.parse(created.body.created_at),
    )
    expect(await eventCount(server)).toBe(2)
    const reread = await api(server, 'GET', '/api/items/BRK-100', { token: server.tokens.viewer })
    expect(reread.body).toEqual(patched.body)

    // When the editor deletes it
    const deleted = await api(server, 'DELETE', '/api/items/BRK-100', { token })
    // Then it answers 204 with no body, and the item is gone
    expect(deleted.status).toBe(204)
    expect(deleted.body).toBeNull()
    expect(await eventCount(server)).toBe(3)
    const gone = await api(server, 'GET', '/api/items/BRK-100', { token: server.tokens.viewer })
    expect(gone.status).toBe(404)
    expectErrorBody(gone.body, 'not_found')

    // And the stream carried exactly one event per mutation, in order, with the documented data
    await events.waitForStoredCount(3)
    expect(events.stored.map((e) => [e.id, e.type])).toEqual([
      [1, 'item.created'],
      [2, 'item.updated'],
      [3, 'item.deleted'],
    ])
    expect(events.stored[0]?.data).toMatchObject({
      part_number: 'BRK-100',
      description: 'Mounting bracket',
      item_type: 'part',
    })
    // item.updated names exactly the fields that changed (item_type was sent but unchanged)
    expect(events.stored[1]?.data).toEqual({
      part_number: 'BRK-100',
      version: 2,
      actor: actorNamed('test-editor'),
      description: 'Welded bracket',
      properties: { finish: 'zinc' },
    })
    expect(events.stored[2]?.data).toEqual({
      part_number: 'BRK-100',
      version: 2,
      actor: actorNamed('test-editor'),
    })
  })

  it.each([5_000, 10_000])(
    'refuses properties nested %i levels deep with a 400 naming the limit, and stores nothing',
    async (levels) => {
      // Given the state before, and a body well within the default body limit
      const before = await dbState(server)
      const body = `{"part_number":"DEEP-1","item_type":"part","properties":{"a":${'['.repeat(levels)}${']'.repeat(levels)}}}`
      // When it is posted
      const res = await api(server, 'POST', '/api/items', {
        token: server.tokens.editor,
        rawBody: body,
      })
      // Then it is refused as too deep, and nothing was written
      expect(res.status).toBe(400)
      expectErrorBody(res.body, 'bad_request')
      expect(res.body.message).toContain('nests deeper than 32 levels')
      expect(await dbState(server)).toEqual(before)
    },
  )

  it('creates an item with only the required fields, defaulting description and properties', async () => {
    // Given an editor
    // When an item is created with just part number and type
    const res = await api(server, 'POST', '/api/items', {
      token: server.tokens.editor,
      body: { part_number: 'DWG-1', item_type: 'drawing' },
    })
    // Then description is empty and properties is an empty object
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject({
      part_number: 'DWG-1',
      description: '',
      item_type: 'drawing',
      properties: {},
    })
  })

  it('a PATCH that changes nothing answers the item and emits no event', async () => {
    // Given an item and a subscriber that has seen its item.created
    const events = await subscribe()
    const token = server.tokens.editor
    const created = await api(server, 'POST', '/api/items', {
      token,
      body: {
        part_number: 'ASM-7',
        description: 'Gearbox',
        item_type: 'assembly',
        properties: { ratio: 3, stages: [1, 2] },
      },
    })
    expect(created.status).toBe(201)
    const createdEvent = await events.waitForEvent('item.created')

    // When every field is patched to the value it already has
    const same = await api(server, 'PATCH', '/api/items/ASM-7', {
      token,
      body: {
        description: 'Gearbox',
        item_type: 'assembly',
        properties: { ratio: 3, stages: [1, 2] },
      },
    })
    // Then the item comes back untouched (updated_at included)
    expect(same.status).toBe(200)
    expect(same.body).toEqual(created.body)

    // And the next event on the stream is the following write's, with the very next id
    await api(server, 'DELETE', '/api/items/ASM-7', { token })
    const deletedEvent = await events.waitForEvent('item.deleted')
    expect(events.stored).toEqual([createdEvent, deletedEvent])
    expect(deletedEvent.id).toBe((createdEvent.id ?? NaN) + 1)
    expect(await eventCount(server)).toBe(2)
  })

  it('a PATCH resending the same properties in another key order emits no event', async () => {
    // Given an item created with properties in the client's key order
    const token = server.tokens.editor
    const properties = { alpha: 1, zeta: { y: 2, x: [1, { b: 1, a: 2 }] } }
    const created = await api(server, 'POST', '/api/items', {
      token,
      body: { part_number: 'P-ORDER', item_type: 'part', properties },
    })
    expect(created.status).toBe(201)
    const before = await dbState(server)

    // When the client sends the very same properties again, once as it first sent them (the
    // database keeps its own key order) and once reordered: object key order is not data
    const resent = await api(server, 'PATCH', '/api/items/P-ORDER', {
      token,
      body: { properties },
    })
    expect(resent.status).toBe(200)
    expect(await dbState(server)).toEqual(before)
    const res = await api(server, 'PATCH', '/api/items/P-ORDER', {
      token,
      body: { properties: { zeta: { x: [1, { a: 2, b: 1 }], y: 2 }, alpha: 1 } },
    })

    // Then nothing changed: no event, same updated_at
    expect(res.status).toBe(200)
    expect(res.body.updated_at).toBe(created.body.updated_at)
    expect(await dbState(server)).toEqual(before)
  })

  it('a PATCH of one field reports only that field in item.updated', async () => {
    // Given an item with properties and a subscriber
    const events = await subscribe()
    const token = server.tokens.editor
    await api(server, 'POST', '/api/items', {
      token,
      body: {
        part_number: 'DOC-3',
        description: 'Spec',
        item_type: 'document',
        properties: { a: 1 },
      },
    })
    // When only the item type changes
    const res = await api(server, 'PATCH', '/api/items/DOC-3', {
      token,
      body: { item_type: 'drawing' },
    })
    // Then description and properties stay, and the event names only item_type
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      description: 'Spec',
      item_type: 'drawing',
      properties: { a: 1 },
    })
    const updated = await events.waitForEvent('item.updated')
    expect(updated.data).toEqual({
      part_number: 'DOC-3',
      version: 2,
      actor: actorNamed('test-editor'),
      item_type: 'drawing',
    })
  })
})

describe('listing items', () => {
  let server: Server
  interface Seed {
    part_number: string
    description: string
    item_type: ItemType
  }
  const seeds: Seed[] = []
  const PREFIXES = ['AX', 'ax', 'B_1', '0', 'Zz.']

  beforeAll(async () => {
    server = await startServer()
    // 300 items with mixed-case part numbers, all four types, and two description families;
    // a few carry the LIKE metacharacters % and _ and a backslash, literally.
    for (let i = 0; i < 300; i++) {
      const pad = String(i).padStart(3, '0')
      let description = i % 3 === 0 ? `Mounting BRACKET ${i}` : `housing ${i}`
      if (i % 50 === 7) description = `100% steel ${i}`
      if (i % 50 === 8) description = `under_score ${i}`
      if (i % 50 === 9) description = `back\\slash ${i}`
      seeds.push({
        part_number: `${PREFIXES[i % PREFIXES.length]}-${pad}`,
        description,
        item_type: ITEM_TYPES[i % ITEM_TYPES.length] as ItemType,
      })
    }
    for (const seed of seeds) await createItem(asSystem(server), seed)
  })
  afterAll(async () => {
    await server?.close()
  })

  /** Follows next_cursor until it is null; returns the part numbers and the page sizes. */
  async function listAll(params: Record<string, string>) {
    const pages: string[][] = []
    let cursor: string | null = null
    for (let guard = 0; guard < 1000; guard++) {
      const query = new URLSearchParams(params)
      if (cursor) query.set('cursor', cursor)
      const res = await api(server, 'GET', `/api/items?${query}`, { token: server.tokens.viewer })
      expect(res.status).toBe(200)
      pages.push(res.body.items.map((item: { part_number: string }) => item.part_number))
      cursor = res.body.next_cursor
      if (cursor === null) break
      expect(typeof cursor).toBe('string')
    }
    return { partNumbers: pages.flat(), pages }
  }

  function expected(filter: (s: Seed) => boolean): string[] {
    // Part numbers are byte-ordered (COLLATE "C"); for ASCII that is JS's default sort.
    return seeds
      .filter(filter)
      .map((s) => s.part_number)
      .sort()
  }

  const contains = (q: string) => (s: Seed) =>
    s.part_number.toLowerCase().includes(q.toLowerCase()) ||
    s.description.toLowerCase().includes(q.toLowerCase())

  it('pages through every item in part-number order, with no duplicate and no gap', async () => {
    // Given 300 items
    // When a client follows next_cursor with limit=37
    const { partNumbers, pages } = await listAll({ limit: '37' })
    // Then it sees every item once, in byte order of part number, in full pages but the last
    expect(partNumbers).toEqual(expected(() => true))
    expect(pages.slice(0, -1).every((p) => p.length === 37)).toBe(true)
    expect(pages.at(-1)?.length).toBe(300 % 37)
  })

  it('returns the same order every time (the order is stable)', async () => {
    const first = await listAll({ limit: '50' })
    const second = await listAll({ limit: '50' })
    const oneGo = await listAll({ limit: '1000' })
    expect(second.partNumbers).toEqual(first.partNumbers)
    expect(oneGo.partNumbers).toEqual(first.partNumbers)
    expect(oneGo.pages).toHaveLength(1)
  })

  it('defaults to 100 items per page', async () => {
    const res = await api(server, 'GET', '/api/items', { token: server.tokens.viewer })
    expect(res.status).toBe(200)
    expect(res.body.items).toHaveLength(100)
    expect(res.body.next_cursor).toEqual(expect.any(String))
  })

  it('combines q (case-insensitive, part number or description) and item_type across pages', async () => {
    // When a client pages with q=bRaCkEt and item_type=assembly
    const { partNumbers, pages } = await listAll({
      q: 'bRaCkEt',
      item_type: 'assembly',
      limit: '7',
    })
    // Then it sees exactly the matching items, over several pages
    const want = expected((s) => contains('bracket')(s) && s.item_type === 'assembly')
    expect(want.length).toBeGreaterThan(14)
    expect(partNumbers).toEqual(want)
    expect(pages.length).toBeGreaterThan(2)
  })

  it('matches q against the part number case-insensitively', async () => {
    // "aX-" matches both the "AX-" and the "ax-" families and nothing else
    const { partNumbers } = await listAll({ q: 'aX-', limit: '25' })
    const want = expected(contains('ax-'))
    expect(want.length).toBe(120)
    expect(partNumbers).toEqual(want)
  })

  it.each([
    ['%', '100% steel'],
    ['_', 'under_score and B_1-'],
    ['\\', 'back\\slash'],
    ['0%', '100% steel'],
    ['g_1', 'nothing: "_" is no wildcard for "housing 1"'],
    ['g%1', 'nothing: "%" is no wildcard for "housing 1"'],
  ])('treats %j in q literally (matches %s)', async (q) => {
    const { partNumbers } = await listAll({ q, limit: '40' })
    const want = expected(contains(q))
    expect(want.length).toBeLessThan(seeds.length)
    expect(partNumbers).toEqual(want)
  })

  it('keeps paging consistently while items are created on both sides of the cursor', async () => {
    // Given a client that has read the first page
    const first = await api(server, 'GET', '/api/items?limit=60', { token: server.tokens.viewer })
    expect(first.status).toBe(200)
    const seen: string[] = first.body.items.map((i: { part_number: string }) => i.part_number)
    const lastSeen = seen.at(-1) as string
    // When one item is created before the cursor and one after it
    const before = await createItem(asSystem(server), { part_number: '0-000a', item_type: 'part' })
    const after = await createItem(asSystem(server), { part_number: 'zzz-new', item_type: 'part' })
    expect(before.part_number < lastSeen && after.part_number > lastSeen).toBe(true)
    try {
      // Then the rest of the pages hold everything after the cursor, the new one included,
      // and nothing already seen
      const rest: string[] = []
      let cursor: string | null = first.body.next_cursor
      while (cursor) {
        const res = await api(server, 'GET', `/api/items?limit=60&cursor=${cursor}`, {
          token: server.tokens.viewer,
        })
        rest.push(...res.body.items.map((i: { part_number: string }) => i.part_number))
        cursor = res.body.next_cursor
      }
      expect(rest).toEqual([...expected(() => true).filter((pn) => pn > lastSeen), 'zzz-new'])
      expect(rest.filter((pn) => seen.includes(pn))).toEqual([])
    } finally {
      await api(server, 'DELETE', '/api/items/0-000a', { token: server.tokens.editor })
      await api(server, 'DELETE', '/api/items/zzz-new', { token: server.tokens.editor })
    }
  })

  it('answers an empty page with a null cursor when nothing matches', async () => {
    const res = await api(server, 'GET', '/api/items?q=no-such-thing', {
      token: server.tokens.viewer,
    })
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ items: [], next_cursor: null })
  })

  it.each([
    ['a cursor that is not one of ours', 'garbage'],
    ['a base64url cursor of the wrong shape', Buffer.from('id:5').toString('base64url')],
    ['an overlong cursor', 'A'.repeat(300)],
  ])('refuses %s with 400', async (_what, cursor) => {
    const res = await api(server, 'GET', `/api/items?cursor=${encodeURIComponent(cursor)}`, {
      token: server.tokens.viewer,
    })
    expect(res.status).toBe(400)
    expectErrorBody(res.body, 'bad_request')
  })

  it.each([['limit=0'], ['limit=1001'], ['limit=ten'], ['item_type=widget'], ['colour=red']])(
    'refuses the query %s with 400',
    async (query) => {
      const res = await api(server, 'GET', `/api/items?${query}`, { token: server.tokens.viewer })
      expect(res.status).toBe(400)
      expectErrorBody(res.body, 'bad_request')
    },
  )
})

describe('bad input (README "Bad input")', () => {
  let server: Server
  const SEED = { part_number: 'SEED-1', description: 'the seed', item_type: 'part' }
  const BODY_LIMIT = 256 * 1024

  beforeAll(async () => {
    // Room for a property value longer than a sheet cell, well below the default 1 MiB.
    server = await startServer({ overrides: { server: { body_limit: BODY_LIMIT } } })
    const res = await api(server, 'POST', '/api/items', { token: server.tokens.editor, body: SEED })
    expect(res.status).toBe(201)
  })
  afterAll(async () => {
    await server?.close()
  })

  interface BadCase {
    name: string
    method: string
    path: string
    body?: unknown
    rawBody?: string
    contentType?: string
    token?: 'editor' | 'admin'
    status: number
    error?: string
    /** What the message must say: the field, and what is wrong with it. */
    message?: string
  }

  const longPn = 'P'.repeat(65)
  const nested = (levels: number) => JSON.parse('['.repeat(levels) + ']'.repeat(levels))
  const cases: BadCase[] = [
    {
      name: 'malformed JSON on create',
      method: 'POST',
      path: '/api/items',
      rawBody: '{"part_number": "NEW-1", ',
      status: 400,
      error: 'invalid_json',
    },
    {
      name: 'malformed JSON on update',
      method: 'PATCH',
      path: '/api/items/SEED-1',
      rawBody: "{'description': 'x'}",
      status: 400,
      error: 'invalid_json',
    },
    {
      name: 'an empty JSON body',
      method: 'POST',
      path: '/api/items',
      rawBody: '',
      status: 400,
    },
    {
      name: 'an unknown field on create',
      method: 'POST',
      path: '/api/items',
      body: { part_number: 'NEW-1', item_type: 'part', colour: 'red' },
      status: 400,
    },
    {
      name: 'an unknown field on update',
      method: 'PATCH',
      path: '/api/items/SEED-1',
      body: { description: 'x', colour: 'red' },
      status: 400,
    },
    {
      name: 'a number as item_type',
      method: 'POST',
      path: '/api/items',
      body: { part_number: 'NEW-1', item_type: 5 },
      status: 400,
    },
    {
      name: 'an unknown item_type',
      method: 'POST',
      path: '/api/items',
      body: { part_number: 'NEW-1', item_type: 'widget' },
      status: 400,
    },
    {
      name: 'an array as item_type (no coercion)',
      method: 'POST',
      path: '/api/items',
      body: { part_number: 'NEW-1', item_type: ['part'] },
      status: 400,
    },
    {
      name: 'a number as description on create',
      method: 'POST',
      path: '/api/items',
      body: { part_number: 'NEW-1', item_type: 'part', description: 123 },
      status: 400,
    },
    {
      name: 'a number as description on update',
      method: 'PATCH',
      path: '/api/items/SEED-1',
      body: { description: 123 },
      status: 400,
    },
    {
      name: 'null as description',
      method: 'PATCH',
      path: '/api/items/SEED-1',
      body: { description: null },
      status: 400,
    },
    {
      name: 'a number as part_number (no coercion to "123")',
      method: 'POST',
      path: '/api/items',
      body: { part_number: 123, item_type: 'part' },
      status: 400,
    },
    {
      name: 'a string as properties',
      method: 'PATCH',
      path: '/api/items/SEED-1',
      body: { properties: 'colour=red' },
      status: 400,
    },
    {
      name: 'the string "true" as read_only (no coercion to boolean)',
      method: 'PUT',
      path: '/api/admin/mode',
      body: { read_only: 'true' },
      token: 'admin',
      status: 400,
    },
    ...['-lead', '.lead', 'has space', 'a/b', 'ä-1', '', longPn].map((pn): BadCase => ({
      name: `the part number ${JSON.stringify(pn.length > 20 ? `${pn.length} chars` : pn)} in a body`,
      method: 'POST',
      path: '/api/items',
      body: { part_number: pn, item_type: 'part' },
      status: 400,
    })),
    ...(['GET', 'PATCH', 'DELETE'] as const).flatMap((method) =>
      ['_lead', longPn, 'a%20b'].map((pn): BadCase => ({
        name: `the part number ${JSON.stringify(pn.length > 20 ? `${pn.length} chars` : pn)} in a ${method} path`,
        method,
        path: `/api/items/${pn}`,
        body: method === 'PATCH' ? { description: 'x' } : undefined,
        status: 400,
      })),
    ),
    {
      name: 'an oversized create body',
      method: 'POST',
      path: '/api/items',
      body: { part_number: 'NEW-1', item_type: 'part', description: 'x'.repeat(BODY_LIMIT) },
      status: 413,
      error: 'payload_too_large',
    },
    {
      name: 'an oversized update body',
      method: 'PATCH',
      path: '/api/items/SEED-1',
      body: { properties: { blob: 'x'.repeat(BODY_LIMIT) } },
      status: 413,
      error: 'payload_too_large',
    },
    ...(['GET', 'PATCH', 'DELETE'] as const).map((method): BadCase => ({
      name: `an unknown part number (${method})`,
      method,
      path: '/api/items/NO-SUCH-1',
      body: method === 'PATCH' ? { description: 'x' } : undefined,
      status: 404,
      error: 'not_found',
    })),
    {
      name: 'a duplicate part number',
      method: 'POST',
      path: '/api/items',
      body: { part_number: 'SEED-1', item_type: 'assembly', description: 'imposter' },
      status: 409,
      error: 'conflict',
    },
    {
      name: 'an empty PATCH',
      method: 'PATCH',
      path: '/api/items/SEED-1',
      body: {},
      status: 400,
    },
    {
      name: 'an XML body',
      method: 'POST',
      path: '/api/items',
      rawBody: '<item part_number="NEW-1"/>',
      contentType: 'application/xml',
      status: 415,
      error: 'unsupported_media_type',
    },
    {
      name: 'a text/plain body',
      method: 'POST',
      path: '/api/items',
      rawBody: '{"part_number":"NEW-1","item_type":"part"}',
      contentType: 'text/plain',
      status: 415,
      error: 'unsupported_media_type',
    },
    {
      name: 'a form-encoded body',
      method: 'PATCH',
      path: '/api/items/SEED-1',
      rawBody: 'description=x',
      contentType: 'application/x-www-form-urlencoded',
      status: 415,
      error: 'unsupported_media_type',
    },
    {
      name: 'NUL in a description',
      method: 'POST',
      path: '/api/items',
      body: { part_number: 'NEW-1', item_type: 'part', description: 'a\u0000b' },
      status: 400,
      message: 'body/description must not contain U+0000 (NUL)',
    },
    {
      name: 'NUL in a property name',
      method: 'POST',
      path: '/api/items',
      body: { part_number: 'NEW-1', item_type: 'part', properties: { 'a\u0000': 1 } },
      status: 400,
      message: 'is a name that contains U+0000 (NUL)',
    },
    {
      name: 'NUL in a property value, deep down',
      method: 'PATCH',
      path: '/api/items/SEED-1',
      body: { properties: { a: [{ b: 'x\u0000' }] } },
      status: 400,
      message: 'body/properties/a/0/b must not contain U+0000 (NUL)',
    },
    {
      name: 'NUL in the search text',
      method: 'GET',
      path: '/api/items?q=a%00b',
      status: 400,
      message: 'query/q must not contain U+0000 (NUL)',
    },
    {
      name: 'NUL in the cursor',
      method: 'GET',
      path: '/api/items?cursor=%00',
      status: 400,
      message: 'query/cursor',
    },
    {
      name: 'limit=Infinity',
      method: 'GET',
      path: '/api/items?limit=Infinity',
      status: 400,
      message: 'query/limit must be a finite number',
    },
    {
      name: 'limit=1e400',
      method: 'GET',
      path: '/api/items?limit=1e400',
      status: 400,
      message: 'query/limit',
    },
    {
      name: 'a number too large to be finite (1e309)',
      method: 'POST',
      path: '/api/items',
      rawBody: '{"part_number":"NEW-1","item_type":"part","properties":{"big":1e309}}',
      status: 400,
      message: 'body/properties/big must be a finite number',
    },
    {
      name: 'properties nested 40 levels deep',
      method: 'POST',
      path: '/api/items',
      body: { part_number: 'NEW-1', item_type: 'part', properties: { a: nested(40) } },
      status: 400,
      message: 'nests deeper than 32 levels',
    },
    {
      name: 'a text property value longer than a sheet cell (65,536 characters)',
      method: 'POST',
      path: '/api/items',
      body: { part_number: 'NEW-1', item_type: 'part', properties: { notes: 'x'.repeat(65_537) } },
      status: 400,
      error: 'bad_request',
      message: 'body/properties/notes is longer than 65536 characters',
    },
    {
      name: 'a property value whose JSON text is longer than a sheet cell',
      method: 'PATCH',
      path: '/api/items/SEED-1',
      body: { properties: { ok: 1, points: Array(20_000).fill(1234) } },
      status: 400,
      error: 'bad_request',
      message: 'body/properties/points is longer than 65536 characters as JSON text',
    },
    {
      name: 'a property name longer than 128 characters',
      method: 'POST',
      path: '/api/items',
      body: { part_number: 'NEW-1', item_type: 'part', properties: { ['n'.repeat(129)]: 1 } },
      status: 400,
      message: 'has the property name',
    },
    {
      name: 'a property name with white space at one end',
      method: 'PATCH',
      path: '/api/items/SEED-1',
      body: { properties: { ' mass': 1 } },
      status: 400,
      message: 'has the property name " mass"',
    },
    {
      name: 'a property named like a fixed column',
      method: 'PATCH',
      path: '/api/items/SEED-1',
      body: { properties: { description: 'x' } },
      status: 400,
      message: 'has the property name "description"',
    },
    {
      name: 'an unknown field, named in the message',
      method: 'POST',
      path: '/api/items',
      body: { part_number: 'NEW-1', item_type: 'part', colour: 'red' },
      status: 400,
      message: 'body has an unknown field "colour"',
    },
    {
      name: 'an unknown item_type, with the ones allowed',
      method: 'POST',
      path: '/api/items',
      body: { part_number: 'NEW-1', item_type: 'widget' },
      status: 400,
      message: 'body/item_type must be one of "part", "assembly", "drawing", "document"',
    },
    {
      name: 'an unknown route',
      method: 'GET',
      path: '/api/nothing-here',
      status: 404,
      error: 'not_found',
    },
    {
      name: 'an unknown route below an item',
      method: 'POST',
      path: '/api/items/SEED-1/nothing-here',
      body: { x: 1 },
      status: 404,
      error: 'not_found',
    },
  ]

  it.each(cases)('answers $name with $status {error, message} and changes nothing', async (c) => {
    // Given the current state of items, tokens, mode and event log
    const before = await dbState(server)
    // When the bad request is made
    const res = await api(server, c.method, c.path, {
      token: server.tokens[c.token ?? 'editor'],
      body: c.body,
      rawBody: c.rawBody,
      headers: c.contentType ? { 'content-type': c.contentType } : {},
    })
    // Then it is refused with a JSON error body
    expect(res.status).toBe(c.status)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expectErrorBody(res.body, c.error)
    if (c.message) expect(res.body.message).toContain(c.message)
    // And nothing changed: no item written, no token, no mode change, no event
    expect(await dbState(server)).toEqual(before)
  })

  it('leaves the seed item exactly as created after all of the above', async () => {
    const res = await api(server, 'GET', '/api/items/SEED-1', { token: server.tokens.viewer })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ ...SEED, properties: {} })
    expect(res.body.updated_at).toBe(res.body.created_at)
    expect((await dbState(server)).events).toEqual({ count: 1, last: 1 })
  })
})

describe('listing 10,000 items', () => {
  let server: Server
  // Part numbers in an order unlike their insertion order, with mixed types and descriptions.
  const seeded = Array.from({ length: 10_000 }, (_, i) => ({
    part_number: `L-${String((i * 7919) % 10_000).padStart(5, '0')}`,
    item_type: ITEM_TYPES[i % ITEM_TYPES.length] as ItemType,
    description: i % 5 === 2 ? `Gear Wheel ${i}` : `spacer ${i}`,
  }))

  beforeAll(async () => {
    server = await startServer()
    // Seeded with one statement: this is about reading pages, not about writing items.
    await server.app.db.query(
      `INSERT INTO items (part_number, item_type, description)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[])`,
      [
        seeded.map((s) => s.part_number),
        seeded.map((s) => s.item_type),
        seeded.map((s) => s.description),
      ],
    )
  })
  afterAll(async () => {
    await server.close()
  })

  async function pages(query: string, limit: number, between?: (page: number) => Promise<void>) {
    const seen: string[] = []
    let cursor: string | null = null
    for (let page = 0; page < 1000; page++) {
      const res = await api(
        server,
        'GET',
        `/api/items?limit=${limit}${query}${cursor ? `&cursor=${cursor}` : ''}`,
        { token: server.tokens.viewer },
      )
      expect(res.status).toBe(200)
      seen.push(...res.body.items.map((i: { part_number: string }) => i.part_number))
      cursor = res.body.next_cursor
      if (!cursor) return seen
      await between?.(page)
    }
    throw new Error('pagination did not end')
  }

  it('pages through all of them once, in part-number order', async () => {
    const seen = await pages('', 1000)
    expect(seen).toEqual(seeded.map((s) => s.part_number).sort())
  })

  it('filters by q (case-insensitive substring) and item_type across pages', async () => {
    const expected = seeded
      .filter((s) => s.item_type === 'drawing' && s.description.toLowerCase().includes('gear'))
      .map((s) => s.part_number)
      .sort()
    expect(expected.length).toBeGreaterThan(100)
    expect(await pages('&q=gEaR&item_type=drawing', 37)).toEqual(expected)
  })

  it('stays stable while items are created and deleted during paging', async () => {
    const seen = await pages('&q=L-', 500, async (page) => {
      if (page !== 3) return
      // Behind the cursor (already passed) and ahead of it.
      await createItem(asSystem(server), { part_number: 'L-00000a', item_type: 'part' })
      await createItem(asSystem(server), { part_number: 'L-99999z', item_type: 'part' })
      await api(server, 'DELETE', '/api/items/L-09999', { token: server.tokens.editor })
    })
    const expected = [...seeded.map((s) => s.part_number), 'L-99999z']
      .filter((pn) => pn !== 'L-09999')
      .sort()
    expect(seen).toEqual(expected)
    expect(new Set(seen).size).toBe(seen.length)
  })
})

describe('clients that always send Content-Type: application/json', () => {
  it('may DELETE with the header and no body; a POST without a body is still refused', async () => {
    const server = await startServer()
    try {
      await createItem(asSystem(server), { part_number: 'CT-1', item_type: 'part' })
      const headers = { 'content-type': 'application/json' }
      const deleted = await api(server, 'DELETE', '/api/items/CT-1', {
        token: server.tokens.editor,
        headers,
      })
      expect(deleted.status).toBe(204)
      const empty = await api(server, 'POST', '/api/items', {
        token: server.tokens.editor,
        headers,
        rawBody: '',
      })
      expect(empty.status).toBe(400)
      expectErrorBody(empty.body)
    } finally {
      await server.close()
    }
  })
})
