import { afterEach, describe, expect, it } from 'vitest'
import { testDatabaseServer } from './support/postgres.js'
import { api, removeDataDir, startServer, type TestServer } from './support/server.js'
import { openStream, openGreetedStream, closeStreams } from './support/sseClient.js'

/** Read-only mode (README "Modes and signals"): writes answer 503 and change nothing; reads, probes, SSE go on. */

let server: TestServer | undefined

afterEach(async () => {
  closeStreams()
  await server?.close()
  server = undefined
})

async function start(overrides: Record<string, unknown> = {}): Promise<TestServer> {
  server = await startServer({ overrides })
  return server
}

const subscribe = (s: TestServer) => openGreetedStream(s)

async function dbState(s: TestServer) {
  const db = s.app.db
  return {
    items: (await db.query('SELECT * FROM items ORDER BY part_number')).rows,
    tokens: (
      await db.query('SELECT id::int AS id, name, role, token_hash FROM api_tokens ORDER BY id')
    ).rows,
    events: (
      await db.query('SELECT count(*)::int AS n, coalesce(max(id), 0)::int AS last FROM events')
    ).rows,
  }
}

async function setReadOnly(s: TestServer, readOnly: boolean) {
  const res = await api(s, 'PUT', '/api/admin/mode', {
    token: s.tokens.admin,
    body: { read_only: readOnly },
  })
  expect(res.status).toBe(200)
  return res
}

/** An item to aim the write routes at. */
async function seed(s: TestServer) {
  const item = await api(s, 'POST', '/api/items', {
    token: s.tokens.editor,
    body: { part_number: 'RO-1', description: 'kept', item_type: 'part', properties: { a: 1 } },
  })
  expect(item.status).toBe(201)
  return { item: item.body }
}

function writeRoutes() {
  return [
    {
      method: 'POST',
      path: '/api/items',
      token: 'editor',
      body: { part_number: 'RO-NEW', item_type: 'part' },
    },
    { method: 'PATCH', path: '/api/items/RO-1', token: 'editor', body: { description: 'changed' } },
    { method: 'DELETE', path: '/api/items/RO-1', token: 'editor' },
    {
      method: 'POST',
      path: '/api/admin/tokens',
      token: 'admin',
      body: { name: 'new', role: 'viewer' },
    },
  ] as const
}

describe('switching to read-only through the admin API', () => {
  it('answers the switch with the new mode and tells SSE subscribers', async () => {
    // Given a running server and a subscriber that has seen the normal mode
    const s = await start()
    const events = await subscribe(s)
    expect(events.events[0]).toEqual({ type: 'server.state', data: { mode: 'normal' } })

    // When an admin turns read-only on
    const res = await setReadOnly(s, true)

    // Then the answer shows the new mode
    expect(res.body).toMatchObject({ mode: 'read-only', read_only: true })
    // And the subscriber gets server.state with the previous mode and a reason
    const change = await events.waitForEvent('server.state', (e) => e.data.mode === 'read-only')
    expect(change.data).toEqual({
      mode: 'read-only',
      previous: 'normal',
      reason: expect.any(String),
    })
    expect(change.id).toBeUndefined()
    // And GET /api/admin/mode agrees
    const mode = await api(s, 'GET', '/api/admin/mode', { token: s.tokens.admin })
    expect(mode.body).toMatchObject({ mode: 'read-only', read_only: true })
  })

  it('refuses every write route with 503 server_read_only and Retry-After, changing nothing', async () => {
    // Given an item and a server switched to read-only
    const s = await start()
    await seed(s)
    await setReadOnly(s, true)
    const before = await dbState(s)

    for (const route of writeRoutes()) {
      // When the write is attempted by a caller who may otherwise make it
      const res = await api(s, route.method, route.path, {
        token: s.tokens[route.token],
        body: 'body' in route ? route.body : undefined,
      })
      // Then it is refused with 503, a Retry-After, and the documented body
      expect({ route: `${route.method} ${route.path}`, status: res.status }).toEqual({
        route: `${route.method} ${route.path}`,
        status: 503,
      })
      expect(res.body).toEqual({ error: 'server_read_only', message: expect.any(String) })
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0)
      // And nothing changed: items, tokens, event log
      expect(await dbState(s)).toEqual(before)
    }
  })

  it('keeps every read working', async () => {
    // Given an item and a server switched to read-only
    const s = await start()
    const { item } = await seed(s)
    await setReadOnly(s, true)
    // Then lists, items, admin reads and the event stream answer as usual
    const list = await api(s, 'GET', '/api/items', { token: s.tokens.viewer })
    expect(list.status).toBe(200)
    expect(list.body.items).toEqual([item])
    const one = await api(s, 'GET', '/api/items/RO-1', { token: s.tokens.viewer })
    expect(one.status).toBe(200)
    expect(one.body).toEqual(item)
    expect((await api(s, 'GET', '/api/admin/tokens', { token: s.tokens.admin })).status).toBe(200)
    expect((await api(s, 'GET', '/api/admin/mode', { token: s.tokens.admin })).status).toBe(200)
    const events = await subscribe(s)
    expect(events.status).toBe(200)
    expect(events.events[0]).toEqual({ type: 'server.state', data: { mode: 'read-only' } })
  })

  it('shows read-only on /health and /ready, and stays ready', async () => {
    const s = await start()
    await setReadOnly(s, true)
    const health = await api(s, 'GET', '/health')
    expect(health.status).toBe(200)
    expect(health.body).toEqual({ status: 'ok', mode: 'read-only' })
    const ready = await api(s, 'GET', '/ready')
    expect(ready.status).toBe(200)
    expect(ready.body).toMatchObject({ status: 'ready', mode: 'read-only', database: 'ok' })
  })

  it('checks the body before the mode: a bad write is still 400 in read-only', async () => {
    const s = await start()
    await setReadOnly(s, true)
    const before = await dbState(s)
    const res = await api(s, 'POST', '/api/items', {
      token: s.tokens.editor,
      body: { part_number: 'RO-2', item_type: 'widget' },
    })
    expect(res.status).toBe(400)
    expect(await dbState(s)).toEqual(before)
  })

  it('restores writes when switched back, and tells subscribers', async () => {
    // Given a read-only server and a subscriber
    const s = await start()
    await setReadOnly(s, true)
    const events = await subscribe(s)
    // When an admin turns read-only off
    const res = await setReadOnly(s, false)
    expect(res.body).toMatchObject({ mode: 'normal', read_only: false })
    // Then subscribers learn it
    const change = await events.waitForEvent('server.state', (e) => e.data.mode === 'normal')
    expect(change.data).toMatchObject({ mode: 'normal', previous: 'read-only' })
    // And every write route works again
    await seed(s)
    const expected = [201, 200, 204, 201]
    const statuses: number[] = []
    for (const route of writeRoutes()) {
      const r = await api(s, route.method, route.path, {
        token: s.tokens[route.token],
        body: 'body' in route ? route.body : undefined,
      })
      statuses.push(r.status)
    }
    expect(statuses).toEqual(expected)
    expect((await api(s, 'GET', '/health')).body.mode).toBe('normal')
  })

  it('setting the mode it already has publishes nothing', async () => {
    // Given a read-only server and a subscriber
    const s = await start()
    await setReadOnly(s, true)
    const events = await subscribe(s)
    // When read-only is set again, and then turned off
    await setReadOnly(s, true)
    await setReadOnly(s, false)
    // Then the only change the subscriber sees is the one to normal
    await events.waitForEvent('server.state', (e) => e.data.mode === 'normal')
    const states = events.events.filter((e) => e.type === 'server.state')
    expect(states.map((e) => [e.type, e.data.mode])).toEqual([
      ['server.state', 'read-only'],
      ['server.state', 'normal'],
    ])
  })
})

describe('revoking tokens in read-only mode', () => {
  it('still works, so a leaked token can be shut out during maintenance', async () => {
    const s = await start()
    const leaked = await api(s, 'POST', '/api/admin/tokens', {
      token: s.tokens.admin,
      body: { name: 'leaked', role: 'editor' },
    })
    expect((await api(s, 'GET', '/api/items', { token: leaked.body.token })).status).toBe(200)
    await setReadOnly(s, true)
    const revoked = await api(s, 'DELETE', `/api/admin/tokens/${leaked.body.id}`, {
      token: s.tokens.admin,
    })
    expect(revoked.status).toBe(204)
    expect((await api(s, 'GET', '/api/items', { token: leaked.body.token })).status).toBe(401)
  })
})

describe('starting read-only from config', () => {
  it('starts in read-only when server.read_only is set, and can be switched off', async () => {
    // Given a server started with server.read_only: true
    const s = await start({ server: { read_only: true } })
    // Then the probes, the admin API and new subscribers see read-only
    expect((await api(s, 'GET', '/health')).body).toEqual({ status: 'ok', mode: 'read-only' })
    const ready = await api(s, 'GET', '/ready')
    expect(ready.status).toBe(200)
    expect(ready.body.mode).toBe('read-only')
    const mode = await api(s, 'GET', '/api/admin/mode', { token: s.tokens.admin })
    expect(mode.body).toMatchObject({ mode: 'read-only', read_only: true })
    const events = await subscribe(s)
    expect(events.events[0]).toEqual({ type: 'server.state', data: { mode: 'read-only' } })
    // And writes are refused
    const before = await dbState(s)
    const write = await api(s, 'POST', '/api/items', {
      token: s.tokens.editor,
      body: { part_number: 'CFG-1', item_type: 'part' },
    })
    expect(write.status).toBe(503)
    expect(write.body.error).toBe('server_read_only')
    expect(write.headers.get('retry-after')).not.toBeNull()
    expect(await dbState(s)).toEqual(before)

    // When an admin turns the fleet switch off, this replica's own switch still holds
    const off = await setReadOnly(s, false)
    expect(off.body).toMatchObject({
      mode: 'read-only',
      read_only: true,
      read_only_local: true,
      read_only_fleet: false,
    })
    // Until the operator flips it on this process (what SIGUSR1 does)
    s.app.modes.toggleReadOnly('SIGUSR1')
    // Then writes work and subscribers were told
    const again = await api(s, 'POST', '/api/items', {
      token: s.tokens.editor,
      body: { part_number: 'CFG-1', item_type: 'part' },
    })
    expect(again.status).toBe(201)
    const change = await events.waitForEvent('server.state', (e) => e.data.mode === 'normal')
    expect(change.data).toMatchObject({ previous: 'read-only', reason: 'SIGUSR1' })
  })
})

describe('read-only through the admin API applies to the fleet', () => {
  it('is stored: a restart on the same data comes back read-only', async () => {
    const first = await startServer({ keepData: true })
    let second: TestServer | undefined
    try {
      const on = await setReadOnly(first, true)
      expect(on.body).toMatchObject({ read_only_fleet: true, read_only_local: false })
      await first.close()
      second = await startServer({ dataDir: first.dataDir })
      expect((await api(second, 'GET', '/health')).body.mode).toBe('read-only')
      const greeting = openStream(second)
      expect((await greeting.waitForEvent('server.state')).data).toEqual({ mode: 'read-only' })
      const mode = await api(second, 'GET', '/api/admin/mode', { token: second.tokens.admin })
      expect(mode.body).toMatchObject({ read_only_fleet: true, read_only_local: false })
      await setReadOnly(second, false)
      expect((await api(second, 'GET', '/health')).body.mode).toBe('normal')
    } finally {
      await first.close()
      await second?.close()
      removeDataDir(first.dataDir)
    }
  })

  it.skipIf(!testDatabaseServer())(
    'reaches every replica on the same PostgreSQL database (runs with SILO_TEST_DATABASE_URL)',
    async () => {
      const a = await startServer({ keepData: true })
      const b = await startServer({ dataDir: a.dataDir })
      try {
        const onB = await openGreetedStream(b)
        await setReadOnly(a, true)
        const change = await onB.waitForEvent('server.state', (e) => e.data.mode === 'read-only')
        expect(change.data.reason).toMatch(/fleet read-only on/)
        const refused = await api(b, 'POST', '/api/items', {
          token: b.tokens.editor,
          body: { part_number: 'FLEET-1', item_type: 'part' },
        })
        expect(refused.status).toBe(503)
        // A replica's own switch stays its own.
        await setReadOnly(a, false)
        // The change back, not the greeting (which also said normal).
        await onB.waitForEvent(
          'server.state',
          (e) => e.data.mode === 'normal' && e.data.previous === 'read-only',
        )
        a.app.modes.toggleReadOnly('SIGUSR1')
        expect(a.app.modes.mode).toBe('read-only')
        expect((await api(b, 'GET', '/health')).body.mode).toBe('normal')
      } finally {
        await b.close()
        await a.close()
        removeDataDir(a.dataDir)
      }
    },
  )
})

describe('every write route carries requireWritable', () => {
  it('lists requireWritable as a preHandler of every POST, PUT, PATCH and DELETE route', async () => {
    // printRoutes groups routes with the same hooks into one block: "<path> (METHODS)" followed
    // by "• (hook) [...]" lines. The write routes that must work in read-only: the mode switch
    // (it is how read-only is turned off), revoking a token, and signing in and out.
    const s = await start()
    const tree = s.app.printRoutes({ includeHooks: true, commonPrefix: false })
    const blocks: { route: string; methods: string[]; preHandlers: string }[] = []
    for (const line of tree.split('\n')) {
      const route = /([^\s─│├└]\S*) \(([A-Z, ]+)\)\s*$/.exec(line)
      if (route) {
        blocks.push({
          route: route[1] as string,
          methods: (route[2] as string).split(', '),
          preHandlers: '',
        })
        continue
      }
      const hook = /• \(preHandler\) (.*)$/.exec(line)
      const last = blocks[blocks.length - 1]
      if (hook && last) last.preHandlers = hook[1] as string
    }
    const writes = blocks.filter((b) =>
      b.methods.some((m) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(m)),
    )
    expect(writes.length).toBeGreaterThanOrEqual(4)
    const unguarded = writes
      .filter((b) => !b.preHandlers.includes('requireWritable'))
      // Under the console's `/`, printRoutes draws the others without their leading slash.
      .map((b) => `${b.methods.join(',')} ${b.route.replace(/^\//, '')}`)
    // printRoutes prints the token route under its prefix, as `/:id`.
    expect(unguarded.sort()).toEqual([
      'DELETE :id',
      'GET,PUT api/admin/mode',
      'POST,GET,DELETE api/session',
    ])
  })
})
