import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Queryable } from '../src/db/database.js'
import { addBomLine, BOM_LOCK, removeBomLine, updateBomLine } from '../src/domain/bom.js'
import type { ActingContext } from '../src/domain/context.js'
import { createItem, type ItemType } from '../src/domain/items.js'
import { actorNamed, asSystem, api, startServer, type TestServer } from './support/server.js'
import { type SseClient, openGreetedStream, closeStreams } from './support/sseClient.js'

/**
 * Bill of materials (README "Bill of materials"): lines with quantities and reference designators, one
 * item.updated per change carrying the parent's whole BOM, no cycles, and a child in use that
 * cannot be deleted. "Nothing changed" is checked against the database itself: items (with
 * updated_at), BOM lines and the event log.
 */

let server: TestServer

/** The items every test starts from, under a prefix of its own (one server serves the file). */
const SEEDS: { name: string; description: string; item_type: ItemType }[] = [
  { name: 'ASM-1', description: 'Gearbox', item_type: 'assembly' },
  { name: 'ASM-2', description: 'Motor unit', item_type: 'assembly' },
  { name: 'SUB-1', description: 'Shaft subassembly', item_type: 'assembly' },
  { name: 'P-2', description: 'Washer M3', item_type: 'part' },
  { name: 'P-10', description: 'Screw M3x10', item_type: 'part' },
  { name: 'CBL-1', description: 'Cable, 2 core', item_type: 'part' },
  { name: 'CY-A', description: 'A', item_type: 'assembly' },
  { name: 'CY-B', description: 'B', item_type: 'assembly' },
  { name: 'CY-C', description: 'C', item_type: 'assembly' },
  { name: 'CY-D', description: 'D', item_type: 'assembly' },
]

let testNumber = 0
/** This test's part number for a seed name ("ASM-1" -> "T7-ASM-1"). */
let pn: (name: string) => string

beforeAll(async () => {
  server = await startServer()
})
beforeEach(async () => {
  testNumber += 1
  const prefix = `T${testNumber}-`
  pn = (name) => `${prefix}${name}`
  for (const { name, ...seed } of SEEDS) {
    await createItem(asSystem(server), { part_number: pn(name), ...seed })
  }
})
afterEach(() => {
  closeStreams()
})
afterAll(async () => {
  await server?.close()
})

async function dbState() {
  const db = server.app.db
  const items = (await db.query(`SELECT *, updated_at::text AS exact FROM items ORDER BY 1`)).rows
  const lines = (
    await db.query(
      `SELECT parent, child, quantity::text AS quantity, reference_designators
       FROM bom_lines ORDER BY parent, child`,
    )
  ).rows
  const events = (
    await db.query('SELECT count(*)::int AS count, coalesce(max(id), 0)::int AS last FROM events')
  ).rows[0]
  return { items, lines, events }
}

/**
 * The stream's only stored event since `before` is `parent`'s BOM becoming `bom`, with the very
 * next id (nothing refused or unchanged in between emitted one).
 */
async function expectOnlyBomEvent(
  events: SseClient,
  before: Awaited<ReturnType<typeof dbState>>,
  parent: string,
  bom: unknown[],
): Promise<void> {
  await events.waitForStoredCount(1)
  expect(events.stored).toEqual([
    {
      id: (before.events?.last as number) + 1,
      type: 'item.updated',
      data: {
        part_number: pn(parent),
        version: expect.any(Number),
        actor: actorNamed('test-editor'),
        bom,
      },
    },
  ])
}

async function lastEventId(): Promise<number> {
  return (await dbState()).events?.last as number
}

/** Subscribes from the current end of the log, so only events from now on are stored. */
async function subscribe(): Promise<SseClient> {
  return openGreetedStream(server, { lastEventId: await lastEventId() })
}

const editor = () => server.tokens.editor
const viewer = () => server.tokens.viewer

/** `/api/items/{parent}/bom[/{child}]` for this test's seed names. */
function bomPath(parent: string, child?: string): string {
  return `/api/items/${pn(parent)}/bom${child === undefined ? '' : `/${pn(child)}`}`
}

function addLine(parent: string, body: unknown, token = editor()) {
  return api(server, 'POST', bomPath(parent), { token, body })
}

async function mustAdd(parent: string, child: string, quantity = 1, designators?: string[]) {
  const res = await addLine(parent, {
    child: pn(child),
    quantity,
    ...(designators ? { reference_designators: designators } : {}),
  })
  expect(res.status).toBe(201)
  return res
}

function expectErrorBody(body: unknown, code: string): void {
  expect(body).toEqual({ error: code, message: expect.any(String) })
}

describe('BOM round trip', () => {
  it('adds, updates and removes lines; each change answers the line and emits one item.updated with the whole BOM', async () => {
    // Given an assembly with no BOM and a subscriber
    const events = await subscribe()
    const before = await lastEventId()

    // When three children are added, in an order that is not part-number order
    const washer = await addLine('ASM-1', { child: pn('P-2'), quantity: 4 })
    const cable = await addLine('ASM-1', {
      child: pn('CBL-1'),
      quantity: 2.5,
      reference_designators: ['W1'],
    })
    const screw = await addLine('ASM-1', {
      child: pn('P-10'),
      quantity: 8,
      reference_designators: ['H1', 'H2'],
    })
    // Then each answers 201 with the line, the quantity a JSON number
    expect([washer.status, cable.status, screw.status]).toEqual([201, 201, 201])
    expect(washer.body).toEqual({
      part_number: pn('P-2'),
      description: 'Washer M3',
      item_type: 'part',
      quantity: 4,
      reference_designators: [],
    })
    expect(cable.body).toEqual({
      part_number: pn('CBL-1'),
      description: 'Cable, 2 core',
      item_type: 'part',
      quantity: 2.5,
      reference_designators: ['W1'],
    })

    // When the quantity of one line and the designators of another change
    const moreWashers = await api(server, 'PUT', bomPath('ASM-1', 'P-2'), {
      token: editor(),
      body: { quantity: 6 },
    })
    const moreCable = await api(server, 'PUT', bomPath('ASM-1', 'CBL-1'), {
      token: editor(),
      body: { reference_designators: ['W2', 'W1'] },
    })
    // Then each answers 200 with the line, keeping the field not sent
    expect(moreWashers.status).toBe(200)
    expect(moreWashers.body).toEqual({ ...washer.body, quantity: 6 })
    expect(moreCable.status).toBe(200)
    expect(moreCable.body).toEqual({ ...cable.body, reference_designators: ['W2', 'W1'] })

    // When one line is removed
    const removed = await api(server, 'DELETE', bomPath('ASM-1', 'P-10'), { token: editor() })
    // Then it answers 204 with no body
    expect(removed.status).toBe(204)
    expect(removed.body).toBeNull()

    // And the BOM reads back in part-number order
    const bom = await api(server, 'GET', bomPath('ASM-1'), { token: viewer() })
    expect(bom.status).toBe(200)
    expect(bom.body).toEqual({
      part_number: pn('ASM-1'),
      children: [moreCable.body, moreWashers.body],
    })

    // And the stream carried exactly one item.updated per change, each with the whole BOM after
    // it in child part-number order, with consecutive ids
    await events.waitForStoredCount(6)
    const cableLine = { part_number: pn('CBL-1'), quantity: 2.5, reference_designators: ['W1'] }
    const cable2 = { ...cableLine, reference_designators: ['W2', 'W1'] }
    const screwLine = { part_number: pn('P-10'), quantity: 8, reference_designators: ['H1', 'H2'] }
    const washerLine = { part_number: pn('P-2'), quantity: 4, reference_designators: [] }
    const washer6 = { ...washerLine, quantity: 6 }
    // A BOM change is a change of the parent: each raises its version
    const bomAfter = (version: number, ...lines: object[]) => ({
      type: 'item.updated',
      data: { part_number: pn('ASM-1'), version, actor: actorNamed('test-editor'), bom: lines },
    })
    expect(events.stored.map(({ type, data }) => ({ type, data }))).toEqual([
      bomAfter(2, washerLine),
      bomAfter(3, cableLine, washerLine),
      bomAfter(4, cableLine, screwLine, washerLine),
      bomAfter(5, cableLine, screwLine, washer6),
      bomAfter(6, cable2, screwLine, washer6),
      bomAfter(7, cable2, washer6),
    ])
    expect(events.stored.map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6].map((n) => before + n))
    expect(await lastEventId()).toBe(before + 6)
  })

  it('orders children by part number in byte order, not by insertion or numerically', async () => {
    // Given children added as P-2, SUB-1, CBL-1, P-10
    for (const child of ['P-2', 'SUB-1', 'CBL-1', 'P-10']) await mustAdd('ASM-2', child)
    // When the BOM is read
    const res = await api(server, 'GET', bomPath('ASM-2'), { token: viewer() })
    // Then "P-10" comes before "P-2", as part numbers sort everywhere else
    expect(res.status).toBe(200)
    expect(res.body.children.map((c: { part_number: string }) => c.part_number)).toEqual(
      ['CBL-1', 'P-10', 'P-2', 'SUB-1'].map(pn),
    )
  })

  it('answers an empty BOM for an item without lines', async () => {
    const res = await api(server, 'GET', bomPath('P-2'), { token: viewer() })
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ part_number: pn('P-2'), children: [] })
  })

  it('keeps decimal quantities exact and answers them as JSON numbers', async () => {
    const quantities = { 'CBL-1': 0.001, 'P-10': 12.75, 'P-2': 1e9 }
    for (const [child, quantity] of Object.entries(quantities)) {
      const res = await addLine('SUB-1', { child: pn(child), quantity })
      expect(res.body.quantity).toBe(quantity)
    }
    const bom = await api(server, 'GET', bomPath('SUB-1'), { token: viewer() })
    expect(bom.body.children.map((c: { quantity: unknown }) => c.quantity)).toEqual([
      0.001, 12.75, 1e9,
    ])
  })

  it("bumps the parent's updated_at on every change, and never the child's", async () => {
    const updatedAt = async (name: string) =>
      (
        await server.app.db.query<{ t: string }>(
          'SELECT updated_at::text AS t FROM items WHERE part_number = $1',
          [pn(name)],
        )
      ).rows[0]?.t
    const changes = [
      () => mustAdd('ASM-1', 'P-2'),
      () => api(server, 'PUT', bomPath('ASM-1', 'P-2'), { token: editor(), body: { quantity: 3 } }),
      () => api(server, 'DELETE', bomPath('ASM-1', 'P-2'), { token: editor() }),
    ]
    const childBefore = await updatedAt('P-2')
    for (const change of changes) {
      // Given the parent's updated_at before the change
      const parentBefore = (await updatedAt('ASM-1')) as string
      // When the BOM changes
      expect((await change()).status).toBeLessThan(300)
      // Then the parent's updated_at moved on
      expect(((await updatedAt('ASM-1')) as string) > parentBefore).toBe(true)
    }
    // And the child was not touched
    expect(await updatedAt('P-2')).toBe(childBefore)
  })

  it('a PUT of the values a line already has writes nothing and emits nothing', async () => {
    // Given a line and a subscriber
    const added = await mustAdd('ASM-1', 'P-2', 2.5, ['R1', 'R2'])
    const events = await subscribe()
    const before = await dbState()
    // When the same values are sent again
    const res = await api(server, 'PUT', bomPath('ASM-1', 'P-2'), {
      token: editor(),
      body: { quantity: 2.5, reference_designators: ['R1', 'R2'] },
    })
    // Then the line comes back unchanged, and nothing was written
    expect(res.status).toBe(200)
    expect(res.body).toEqual(added.body)
    expect(await dbState()).toEqual(before)
    // And the next event on the stream is the next real change's
    await api(server, 'PUT', bomPath('ASM-1', 'P-2'), { token: editor(), body: { quantity: 3 } })
    await expectOnlyBomEvent(events, before, 'ASM-1', [
      { part_number: pn('P-2'), quantity: 3, reference_designators: ['R1', 'R2'] },
    ])
  })

  it('emits nothing for refused changes: the next event is the next successful change', async () => {
    // Given a line and a subscriber
    await mustAdd('ASM-1', 'SUB-1')
    const events = await subscribe()
    const before = await dbState()

    // When a run of changes is refused
    const refused = [
      await addLine('ASM-1', { child: pn('SUB-1'), quantity: 1 }), // already on the BOM
      await addLine('SUB-1', { child: pn('ASM-1'), quantity: 1 }), // a cycle
      await addLine('ASM-1', { child: pn('NOPE'), quantity: 1 }), // no such child
      await addLine('ASM-1', { child: pn('P-2'), quantity: 0 }), // a bad body
      await api(server, 'PUT', bomPath('ASM-1', 'P-2'), { token: editor(), body: { quantity: 2 } }),
      await api(server, 'DELETE', bomPath('ASM-1', 'P-2'), { token: editor() }),
      await api(server, 'DELETE', `/api/items/${pn('SUB-1')}`, { token: editor() }), // in use
    ]
    expect(refused.map((r) => r.status)).toEqual([409, 409, 404, 400, 404, 404, 409])
    expect(await dbState()).toEqual(before)

    // And then one succeeds
    await mustAdd('ASM-1', 'P-2', 2)

    // Then the stream's next event is the successful one's, with the very next id
    await expectOnlyBomEvent(events, before, 'ASM-1', [
      { part_number: pn('P-2'), quantity: 2, reference_designators: [] },
      { part_number: pn('SUB-1'), quantity: 1, reference_designators: [] },
    ])
  })
})

describe('cycles', () => {
  /** Adding `child` to `parent` is refused as bom_cycle with `cycle` (seed names). */
  async function expectCycle(parent: string, child: string, cycle: string[]) {
    const before = await dbState()
    const res = await addLine(parent, { child: pn(child), quantity: 1 })
    expect(res.status).toBe(409)
    expect(res.body).toEqual({
      error: 'bom_cycle',
      message: expect.stringContaining(cycle.map(pn).join(' -> ')),
      cycle: cycle.map(pn),
    })
    expect(await dbState()).toEqual(before)
  }

  it('refuses an item on its own BOM', async () => {
    await expectCycle('CY-A', 'CY-A', ['CY-A', 'CY-A'])
  })

  it('refuses a direct cycle (A -> B, then B -> A)', async () => {
    await mustAdd('CY-A', 'CY-B')
    await expectCycle('CY-B', 'CY-A', ['CY-B', 'CY-A', 'CY-B'])
  })

  it('refuses an indirect cycle (A -> B -> C, then C -> A), naming the whole path', async () => {
    await mustAdd('CY-A', 'CY-B')
    await mustAdd('CY-B', 'CY-C')
    await expectCycle('CY-C', 'CY-A', ['CY-C', 'CY-A', 'CY-B', 'CY-C'])
  })

  it('names the shortest path when several lead back to the parent', async () => {
    // Given A -> B -> C -> D and A -> D
    await mustAdd('CY-A', 'CY-B')
    await mustAdd('CY-B', 'CY-C')
    await mustAdd('CY-C', 'CY-D')
    await mustAdd('CY-A', 'CY-D')
    // Then closing D -> A names the short way round
    await expectCycle('CY-D', 'CY-A', ['CY-D', 'CY-A', 'CY-D'])
  })

  it('allows shared subassemblies: a diamond is not a cycle', async () => {
    // A -> B -> D and A -> C -> D: D is on two BOMs below A
    await mustAdd('CY-A', 'CY-B')
    await mustAdd('CY-A', 'CY-C')
    await mustAdd('CY-B', 'CY-D')
    await mustAdd('CY-C', 'CY-D')
    // And a sibling may go below a sibling
    await mustAdd('CY-B', 'CY-C')
    const bom = await api(server, 'GET', bomPath('CY-B'), { token: viewer() })
    expect(bom.body.children.map((c: { part_number: string }) => c.part_number)).toEqual(
      ['CY-C', 'CY-D'].map(pn),
    )
  })

  it('lets exactly one of two concurrent halves of a cycle through', async () => {
    // When A -> B and B -> A are sent at the same time
    const before = await dbState()
    const [ab, ba] = await Promise.all([
      addLine('CY-A', { child: pn('CY-B'), quantity: 1 }),
      addLine('CY-B', { child: pn('CY-A'), quantity: 1 }),
    ])
    // Then one is added and the other refused as a cycle
    expect([ab.status, ba.status].sort()).toEqual([201, 409])
    expect([ab.body.error, ba.body.error]).toContain('bom_cycle')
    expect((await dbState()).lines).toHaveLength(before.lines.length + 1)
  })

  it('takes the BOM advisory lock before anything else in every mutation', async () => {
    // Write skew cannot be provoked on single-connection PGlite, so this checks the lock itself:
    // the first statement of every BOM transaction is pg_advisory_xact_lock(BOM_LOCK).
    const firstStatements: { sql: string; params: unknown[] | undefined }[] = []
    const real = asSystem(server)
    const recording: ActingContext = {
      ...real,
      db: {
        ...real.db,
        transaction: (fn) =>
          real.db.transaction((tx) => {
            let first = true
            const spy: Queryable = {
              query: (sql, params) => {
                if (first) firstStatements.push({ sql, params })
                first = false
                return tx.query(sql, params)
              },
            }
            return fn(spy)
          }),
      },
    }
    await addBomLine(recording, pn('ASM-1'), { child: pn('P-2'), quantity: 1 })
    await updateBomLine(recording, pn('ASM-1'), pn('P-2'), { quantity: 2 })
    await removeBomLine(recording, pn('ASM-1'), pn('P-2'))
    expect(firstStatements).toEqual(
      Array(3).fill({ sql: 'SELECT pg_advisory_xact_lock($1)', params: [BOM_LOCK] }),
    )
  })
})

describe('unknown items and lines', () => {
  // Seed names throughout: the test maps them to its own part numbers.
  const cases: {
    name: string
    method: string
    parent: string
    child?: string
    body?: { child: string; quantity: number } | { quantity: number }
    names: string
  }[] = [
    { name: 'GET of a missing parent', method: 'GET', parent: 'NOPE', names: 'NOPE' },
    {
      name: 'POST to a missing parent',
      method: 'POST',
      parent: 'NOPE',
      body: { child: 'P-2', quantity: 1 },
      names: 'NOPE',
    },
    {
      name: 'POST of a missing child',
      method: 'POST',
      parent: 'ASM-1',
      body: { child: 'NOPE', quantity: 1 },
      names: 'NOPE',
    },
    {
      name: 'PUT on a missing parent',
      method: 'PUT',
      parent: 'NOPE',
      child: 'P-2',
      body: { quantity: 1 },
      names: 'NOPE',
    },
    {
      name: 'PUT of an item that is not on the BOM',
      method: 'PUT',
      parent: 'ASM-1',
      child: 'P-10',
      body: { quantity: 1 },
      names: 'P-10',
    },
    {
      name: 'PUT of a part number that does not exist',
      method: 'PUT',
      parent: 'ASM-1',
      child: 'NOPE',
      body: { quantity: 1 },
      names: 'NOPE',
    },
    {
      name: 'DELETE on a missing parent',
      method: 'DELETE',
      parent: 'NOPE',
      child: 'P-2',
      names: 'NOPE',
    },
    {
      name: 'DELETE of an item that is not on the BOM',
      method: 'DELETE',
      parent: 'ASM-1',
      child: 'P-10',
      names: 'P-10',
    },
  ]

  it.each(cases)('answers $name with 404 naming it, changing nothing', async (c) => {
    // Given ASM-1 with P-2 on its BOM
    await mustAdd('ASM-1', 'P-2')
    const before = await dbState()
    // When the request names something that is not there
    const res = await api(server, c.method, bomPath(c.parent, c.child), {
      token: c.method === 'GET' ? viewer() : editor(),
      body: c.body && 'child' in c.body ? { ...c.body, child: pn(c.body.child) } : c.body,
    })
    // Then it is 404 naming what is missing, and nothing changed
    expect(res.status).toBe(404)
    expectErrorBody(res.body, 'not_found')
    expect(res.body.message).toContain(pn(c.names))
    expect(await dbState()).toEqual(before)
  })

  it('answers a child already on the BOM with 409 conflict, keeping the line as it was', async () => {
    await mustAdd('ASM-1', 'P-2', 4, ['R1'])
    const before = await dbState()
    const res = await addLine('ASM-1', { child: pn('P-2'), quantity: 9 })
    expect(res.status).toBe(409)
    expectErrorBody(res.body, 'conflict')
    expect(res.body.message).toContain(pn('P-2'))
    expect(await dbState()).toEqual(before)
  })
})

describe('bad bodies', () => {
  const designators = (n: number) => Array.from({ length: n }, (_, i) => `R${i + 1}`)
  // `child: true` stands for this test's P-2.
  const posts: [string, Record<string, unknown>][] = [
    ['quantity 0', { child: true, quantity: 0 }],
    ['a negative quantity', { child: true, quantity: -1 }],
    ['a quantity as a string', { child: true, quantity: '2' }],
    ['a null quantity', { child: true, quantity: null }],
    ['a quantity above 1e9', { child: true, quantity: 1e9 + 1 }],
    ['no quantity', { child: true }],
    ['no child', { quantity: 1 }],
    ['a child that is no part number', { child: 'P 2', quantity: 1 }],
    ['an unknown field', { child: true, quantity: 1, position: 3 }],
    ['designators as a string', { child: true, quantity: 1, reference_designators: 'R1,R2' }],
    ['an empty designator', { child: true, quantity: 1, reference_designators: [''] }],
    ['a designator with a space', { child: true, quantity: 1, reference_designators: ['R 1'] }],
    ['a designator with a slash', { child: true, quantity: 1, reference_designators: ['R/1'] }],
    [
      'a designator of 65 characters',
      { child: true, quantity: 1, reference_designators: ['R'.repeat(65)] },
    ],
    ['a number as designator', { child: true, quantity: 1, reference_designators: [1] }],
    [
      'duplicate designators',
      { child: true, quantity: 1, reference_designators: ['R1', 'R2', 'R1'] },
    ],
    ['1001 designators', { child: true, quantity: 1, reference_designators: designators(1001) }],
  ]
  const puts: [string, unknown][] = [
    ['an empty body', {}],
    ['quantity 0', { quantity: 0 }],
    ['a negative quantity', { quantity: -2.5 }],
    ['a quantity as a string', { quantity: '3' }],
    ['an unknown field', { quantity: 1, child: 'P-10' }],
    ['duplicate designators', { reference_designators: ['C1', 'C1'] }],
    ['a bad designator', { reference_designators: ['C1', 'C 2'] }],
  ]

  it.each(posts)('refuses a POST with %s with 400, changing nothing', async (_name, body) => {
    const before = await dbState()
    const res = await addLine('ASM-1', {
      ...body,
      ...(body.child === true && { child: pn('P-2') }),
    })
    expect(res.status).toBe(400)
    expectErrorBody(res.body, 'bad_request')
    expect(await dbState()).toEqual(before)
  })

  it.each(puts)('refuses a PUT with %s with 400, changing nothing', async (_name, body) => {
    await mustAdd('ASM-1', 'P-2', 1, ['C1'])
    const before = await dbState()
    const res = await api(server, 'PUT', bomPath('ASM-1', 'P-2'), { token: editor(), body })
    expect(res.status).toBe(400)
    expectErrorBody(res.body, 'bad_request')
    expect(await dbState()).toEqual(before)
  })

  it('accepts 1000 distinct designators of 64 characters', async () => {
    const many = designators(1000).map((d) => d.padEnd(64, '.'))
    const res = await addLine('ASM-1', {
      child: pn('P-2'),
      quantity: 1000,
      reference_designators: many,
    })
    expect(res.status).toBe(201)
    expect(res.body.reference_designators).toEqual(many)
  })

  it.each([
    ['GET', '/api/items/-bad/bom'],
    ['PUT', '/api/items/ASM-1/bom/has%20space'],
    ['DELETE', '/api/items/ASM-1/bom/_lead'],
  ])('refuses a bad part number in a %s path with 400', async (method, path) => {
    const before = await dbState()
    const res = await api(server, method, path, {
      token: editor(),
      body: method === 'PUT' ? { quantity: 1 } : undefined,
    })
    expect(res.status).toBe(400)
    expectErrorBody(res.body, 'bad_request')
    expect(await dbState()).toEqual(before)
  })
})

describe('roles', () => {
  const writes = () => [
    { method: 'POST', path: bomPath('ASM-1'), body: { child: pn('P-10'), quantity: 1 } },
    { method: 'PUT', path: bomPath('ASM-1', 'P-2'), body: { quantity: 5 } },
    { method: 'DELETE', path: bomPath('ASM-1', 'P-2') },
  ]

  beforeEach(async () => {
    await mustAdd('ASM-1', 'P-2')
  })

  it('answers every BOM route with 401 without a token, changing nothing', async () => {
    const before = await dbState()
    for (const route of [{ method: 'GET', path: bomPath('ASM-1') }, ...writes()]) {
      const res = await api(server, route.method, route.path, { body: route.body })
      expect({ route, status: res.status }).toEqual({ route, status: 401 })
      expectErrorBody(res.body, 'unauthorized')
    }
    expect(await dbState()).toEqual(before)
  })

  it('lets a viewer read the BOM but answers its writes with 403, changing nothing', async () => {
    const before = await dbState()
    const read = await api(server, 'GET', bomPath('ASM-1'), { token: viewer() })
    expect(read.status).toBe(200)
    expect(read.body.children).toHaveLength(1)
    for (const route of writes()) {
      const res = await api(server, route.method, route.path, { token: viewer(), body: route.body })
      expect({ route, status: res.status }).toEqual({ route, status: 403 })
      expectErrorBody(res.body, 'forbidden')
    }
    expect(await dbState()).toEqual(before)
  })

  it('lets an editor and an admin write', async () => {
    const tokens = [editor(), server.tokens.admin, editor()]
    const statuses: number[] = []
    for (const [i, route] of writes().entries()) {
      const res = await api(server, route.method, route.path, {
        token: tokens[i],
        body: route.body,
      })
      statuses.push(res.status)
    }
    expect(statuses).toEqual([201, 200, 204])
  })
})

describe('read-only mode', () => {
  async function setReadOnly(readOnly: boolean) {
    const res = await api(server, 'PUT', '/api/admin/mode', {
      token: server.tokens.admin,
      body: { read_only: readOnly },
    })
    expect(res.status).toBe(200)
  }

  it('refuses every BOM write with 503 server_read_only and Retry-After, changing nothing; reads go on', async () => {
    // Given a line and a server switched to read-only
    await mustAdd('ASM-1', 'P-2')
    await setReadOnly(true)
    try {
      const before = await dbState()
      for (const route of [
        { method: 'POST', path: bomPath('ASM-1'), body: { child: pn('P-10'), quantity: 1 } },
        { method: 'PUT', path: bomPath('ASM-1', 'P-2'), body: { quantity: 5 } },
        { method: 'DELETE', path: bomPath('ASM-1', 'P-2') },
      ]) {
        // When an editor tries the write
        const res = await api(server, route.method, route.path, {
          token: editor(),
          body: route.body,
        })
        // Then it is refused as read-only
        expect({ route, status: res.status }).toEqual({ route, status: 503 })
        expectErrorBody(res.body, 'server_read_only')
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0)
      }
      // And nothing changed
      expect(await dbState()).toEqual(before)
      // And the BOM can still be read
      const bom = await api(server, 'GET', bomPath('ASM-1'), { token: viewer() })
      expect(bom.status).toBe(200)
      expect(bom.body.children).toHaveLength(1)
    } finally {
      await setReadOnly(false)
    }
  })
})

describe('deleting items on BOMs', () => {
  it('refuses to delete a child in use with 409 naming every parent, changing nothing', async () => {
    // Given P-2 on the BOMs of ASM-2 and ASM-1, and a subscriber
    await mustAdd('ASM-2', 'P-2')
    await mustAdd('ASM-1', 'P-2')
    const events = await subscribe()
    const before = await dbState()

    // When P-2 is deleted
    const res = await api(server, 'DELETE', `/api/items/${pn('P-2')}`, { token: editor() })

    // Then it is refused, naming the parents in part-number order
    expect(res.status).toBe(409)
    expect(res.body).toEqual({
      error: 'conflict',
      message: `item ${pn('P-2')} is used in the BOM of ${pn('ASM-1')}, ${pn('ASM-2')}`,
    })
    // And nothing changed: the item, the lines, the event log
    expect(await dbState()).toEqual(before)

    // When it is taken off both BOMs
    await api(server, 'DELETE', bomPath('ASM-1', 'P-2'), { token: editor() })
    await api(server, 'DELETE', bomPath('ASM-2', 'P-2'), { token: editor() })
    // Then it can be deleted, and the stream shows exactly those three changes
    const deleted = await api(server, 'DELETE', `/api/items/${pn('P-2')}`, { token: editor() })
    expect(deleted.status).toBe(204)
    await events.waitForStoredCount(3)
    expect(events.stored.map((e) => [e.type, e.data.part_number])).toEqual([
      ['item.updated', pn('ASM-1')],
      ['item.updated', pn('ASM-2')],
      ['item.deleted', pn('P-2')],
    ])
  })

  it('names the first ten parents and counts the rest', async () => {
    const users = Array.from({ length: 12 }, (_, i) => `USR-${String(i + 1).padStart(2, '0')}`)
    for (const user of users) {
      await createItem(asSystem(server), { part_number: pn(user), item_type: 'assembly' })
      await mustAdd(user, 'P-10')
    }
    const res = await api(server, 'DELETE', `/api/items/${pn('P-10')}`, { token: editor() })
    expect(res.status).toBe(409)
    expect(res.body.message).toBe(
      `item ${pn('P-10')} is used in the BOM of ${users.slice(0, 10).map(pn).join(', ')} and 2 more`,
    )
  })

  it('deleting a parent removes its own lines and leaves its children', async () => {
    // Given ASM-1 with two children, one of them also on ASM-2
    await mustAdd('ASM-1', 'P-2')
    await mustAdd('ASM-1', 'SUB-1')
    await mustAdd('ASM-2', 'P-2')
    const events = await subscribe()
    const linesOf = async (parent: string) =>
      (await dbState()).lines.filter((l) => l.parent === pn(parent))

    // When ASM-1 is deleted
    const res = await api(server, 'DELETE', `/api/items/${pn('ASM-1')}`, { token: editor() })

    // Then it is gone with its lines; ASM-2's line and the children stay
    expect(res.status).toBe(204)
    expect(await linesOf('ASM-1')).toEqual([])
    expect(await linesOf('ASM-2')).toEqual([
      { parent: pn('ASM-2'), child: pn('P-2'), quantity: '1', reference_designators: [] },
    ])
    for (const child of ['P-2', 'SUB-1']) {
      const item = await api(server, 'GET', `/api/items/${pn(child)}`, { token: viewer() })
      expect(item.status).toBe(200)
    }
    expect((await api(server, 'GET', bomPath('ASM-1'), { token: viewer() })).status).toBe(404)
    // And SUB-1, no longer in use, can now be deleted
    const sub = await api(server, 'DELETE', `/api/items/${pn('SUB-1')}`, { token: editor() })
    expect(sub.status).toBe(204)
    // And the stream shows the two deletions only
    await events.waitForStoredCount(2)
    const actor = actorNamed('test-editor')
    expect(events.stored.map((e) => [e.type, e.data])).toEqual([
      ['item.deleted', { part_number: pn('ASM-1'), version: expect.any(Number), actor }],
      ['item.deleted', { part_number: pn('SUB-1'), version: 1, actor }],
    ])
  })
})
