import { userInfo } from 'node:os'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { runCli, siloEnv } from './support/child.js'
import { api, freshDataDir, removeDataDir, startServer, type TestServer } from './support/server.js'
import { closeStreams, openGreetedStream } from './support/sseClient.js'

/**
 * Who did what (README, "Who did what"): every stored event names its actor, items and
 * revisions record who made and last changed them, `GET /api/items/{pn}/history` lists an
 * item's events newest first, and token commands record who ran them.
 */

let server: TestServer
let seq = 0
const fresh = (prefix: string) => `${prefix}-${++seq}`
/** The test server's tokens as actors: the id and name each was made with. */
const actors: Record<string, { token_id: number; name: string }> = {}

beforeAll(async () => {
  server = await startServer()
  const { rows } = await server.app.db.query<{ id: number; name: string }>(
    'SELECT id::float8 AS id, name FROM api_tokens',
  )
  for (const row of rows) actors[row.name] = { token_id: Number(row.id), name: row.name }
})
afterAll(() => server.close())
afterEach(() => closeStreams())

const as = (role: 'admin' | 'editor' | 'viewer') => ({ token: server.tokens[role] })

describe('actors', () => {
  it('are recorded on the item, its revisions and every event, for whoever made each change', async () => {
    // Given a subscriber, and an item the editor creates and the admin then changes
    const pn = fresh('WHO')
    const events = await openGreetedStream(server, { query: { part_number: pn } })
    const body = { part_number: pn, item_type: 'part' }
    const created = await api(server, 'POST', '/api/items', { ...as('editor'), body })
    const patched = await api(server, 'PATCH', `/api/items/${pn}`, {
      ...as('admin'),
      body: { description: 'by the admin' },
    })
    const revision = await api(server, 'POST', `/api/items/${pn}/revisions`, {
      ...as('editor'),
      body: { comment: 'r1' },
    })

    // Then the item says who made it and who changed it last, the revision who made it
    const editor = actors['test-editor']
    const admin = actors['test-admin']
    expect(created.body).toMatchObject({ created_by: editor, updated_by: editor })
    expect(patched.body).toMatchObject({ created_by: editor, updated_by: admin })
    expect(revision.body.created_by).toEqual(editor)
    const read = await api(server, 'GET', `/api/items/${pn}`, as('viewer'))
    expect(read.body).toMatchObject({ created_by: editor, updated_by: editor })

    // And each event on the stream names its actor
    await events.waitForStoredCount(3)
    expect(events.stored.map((e) => [e.type, e.data.actor])).toEqual([
      ['item.created', editor],
      ['item.updated', admin],
      ['revision.created', editor],
    ])
  })
})

describe('GET /api/items/{pn}/history', () => {
  it("lists the item's events newest first, with actor and data, and outlives the item", async () => {
    // Given an item created, changed and deleted by different tokens
    const pn = fresh('HIST')
    await api(server, 'POST', '/api/items', {
      ...as('editor'),
      body: { part_number: pn, item_type: 'part', description: 'one' },
    })
    await api(server, 'PATCH', `/api/items/${pn}`, { ...as('admin'), body: { description: 'two' } })
    await api(server, 'DELETE', `/api/items/${pn}`, as('admin'))

    // When a viewer asks for its history
    const res = await api(server, 'GET', `/api/items/${pn}/history`, as('viewer'))

    // Then it lists all three, newest first, with who did each and what the stream sent
    expect(res.status).toBe(200)
    expect(res.body.part_number).toBe(pn)
    expect(res.body.next_cursor).toBeNull()
    const [deleted, updated, created] = res.body.events
    expect(res.body.events.map((e: any) => [e.type, e.actor.name])).toEqual([
      ['item.deleted', 'test-admin'],
      ['item.updated', 'test-admin'],
      ['item.created', 'test-editor'],
    ])
    expect(deleted.id).toBeGreaterThan(updated.id)
    expect(updated.id).toBeGreaterThan(created.id)
    expect(updated.data).toEqual({
      part_number: pn,
      version: 2,
      actor: actors['test-admin'],
      description: 'two',
    })
    expect(new Date(created.created_at).toISOString()).toBe(created.created_at)
  })

  it('pages with limit and cursor, and only holds events about that item', async () => {
    const pn = fresh('PAGE')
    const other = fresh('OTHER')
    for (const p of [pn, other]) {
      await api(server, 'POST', '/api/items', {
        ...as('editor'),
        body: { part_number: p, item_type: 'part' },
      })
    }
    for (const description of ['a', 'b', 'c', 'd']) {
      await api(server, 'PATCH', `/api/items/${pn}`, { ...as('editor'), body: { description } })
      await api(server, 'PATCH', `/api/items/${other}`, { ...as('editor'), body: { description } })
    }
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const query: string = cursor ? `limit=2&cursor=${cursor}` : 'limit=2'
      const page = await api(server, 'GET', `/api/items/${pn}/history?${query}`, as('viewer'))
      expect(page.status).toBe(200)
      expect(page.body.events.length).toBeLessThanOrEqual(2)
      for (const e of page.body.events) {
        expect(e.data.part_number).toBe(pn)
        seen.push(e.type === 'item.created' ? e.type : e.data.description)
      }
      cursor = page.body.next_cursor
    } while (cursor)
    expect(seen).toEqual(['d', 'c', 'b', 'a', 'item.created'])
  })

  it('answers 404 for an item it knows nothing of, and 400 for a bad cursor or limit', async () => {
    const unknown = await api(server, 'GET', `/api/items/${fresh('NONE')}/history`, as('viewer'))
    expect(unknown.status).toBe(404)
    expect(unknown.body.error).toBe('not_found')
    const pn = fresh('Q')
    await api(server, 'POST', '/api/items', {
      ...as('editor'),
      body: { part_number: pn, item_type: 'part' },
    })
    for (const query of ['cursor=nope', 'limit=0', 'limit=1001', 'colour=red']) {
      const res = await api(server, 'GET', `/api/items/${pn}/history?${query}`, as('viewer'))
      expect(res.status, query).toBe(400)
      expect(res.body.error, query).toBe('bad_request')
    }
    const anonymous = await api(server, 'GET', `/api/items/${pn}/history`)
    expect(anonymous.status).toBe(401)
  })
})

describe('token commands', () => {
  it('record the admin token that created or revoked a token through the API', async () => {
    const created = await api(server, 'POST', '/api/admin/tokens', {
      ...as('admin'),
      body: { name: 'ci', role: 'editor' },
    })
    expect(created.body.created_by).toEqual(actors['test-admin'])
    const listed = await api(server, 'GET', '/api/admin/tokens', as('admin'))
    const ci = listed.body.tokens.find((t: any) => t.id === created.body.id)
    expect(ci.created_by).toEqual(actors['test-admin'])

    const revoked = await api(server, 'DELETE', `/api/admin/tokens/${created.body.id}`, as('admin'))
    expect(revoked.status).toBe(204)
    const { rows } = await server.app.db.query(
      'SELECT token_id::int AS token_id, name, role, revoked_by FROM token_revocations WHERE token_id = $1',
      [created.body.id],
    )
    expect(rows).toEqual([
      { token_id: created.body.id, name: 'ci', role: 'editor', revoked_by: actors['test-admin'] },
    ])
  })

  it('record the command line and its OS user when run from the CLI', async () => {
    const dir = freshDataDir()
    try {
      const env = siloEnv(dir)
      const made = await runCli(['token', 'create', '--role', 'viewer', '--name', 'x'], env)
      expect(made.code).toBe(0)
      const id = /#(\d+)/.exec(made.stdout)?.[1] as string
      const cli = `cli:${userInfo().username}`
      const list = await runCli(['token', 'list'], env)
      expect(list.stdout).toMatch(new RegExp(`^${id}\t.*\tby ${cli}\t`, 'm'))
      expect((await runCli(['token', 'revoke', id], env)).code).toBe(0)

      const check = await startServer({ dataDir: dir, keepData: true })
      try {
        const { rows } = await check.app.db.query(
          'SELECT revoked_by FROM token_revocations WHERE token_id = $1',
          [Number(id)],
        )
        expect(rows).toEqual([{ revoked_by: { token_id: null, name: cli } }])
      } finally {
        await check.close()
      }
    } finally {
      removeDataDir(dir)
    }
  })
})
