import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import { hashToken } from '../src/domain/tokens.js'
import authPlugin from '../src/plugins/auth.js'
import principalsPlugin from '../src/plugins/principals.js'
import { actorNamed, api, startServer, type TestServer } from './support/server.js'
import { SseClient } from './support/sseClient.js'

/** Bearer tokens, roles per route group, query tokens, revocation, and secrets kept secret (README "Tokens", "Security"). */

let server: TestServer
const clients: SseClient[] = []

beforeAll(async () => {
  server = await startServer()
})
afterEach(() => {
  for (const c of clients.splice(0)) c.close()
})
afterAll(async () => {
  await server?.close()
})

type Who = 'anonymous' | 'viewer' | 'editor' | 'admin'
const RANK: Record<Who, number> = { anonymous: 0, viewer: 1, editor: 2, admin: 3 }

function tokenOf(who: Who): string | undefined {
  return who === 'anonymous' ? undefined : server.tokens[who]
}

let counter = 0
function uniquePn(): string {
  counter += 1
  return `AUTH-${counter}`
}

async function createItemAsEditor(): Promise<string> {
  const pn = uniquePn()
  const res = await api(server, 'POST', '/api/items', {
    token: server.tokens.editor,
    body: { part_number: pn, item_type: 'part' },
  })
  expect(res.status).toBe(201)
  return pn
}

async function createToken(name: string, role: string) {
  const res = await api(server, 'POST', '/api/admin/tokens', {
    token: server.tokens.admin,
    body: { name, role },
  })
  expect(res.status).toBe(201)
  return res.body as {
    id: number
    name: string
    role: string
    prefix: string
    created_at: string
    expires_at: string | null
    token: string
  }
}

/** Opens the event stream and resolves with the response status once the head has arrived. */
async function eventsStatus(options: ConstructorParameters<typeof SseClient>[1]): Promise<number> {
  const client = new SseClient(server.url, options)
  clients.push(client)
  await client.connected()
  if (client.status === 200) await client.waitForEvent('server.state')
  return client.status
}

async function itemCount(): Promise<number> {
  const { rows } = await server.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM items')
  return rows[0]?.n ?? -1
}

describe('bearer tokens', () => {
  it('answers a request without a token with 401 and a WWW-Authenticate challenge', async () => {
    const res = await api(server, 'GET', '/api/items')
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/)
    expect(res.body).toEqual({ error: 'unauthorized', message: expect.any(String) })
  })

  it.each([
    ['an unknown silo_ token', () => `silo_${'x'.repeat(43)}`],
    ['a real token without its silo_ prefix', () => server.tokens.admin.slice('silo_'.length)],
    ['a real token with a changed last character', () => `${server.tokens.admin.slice(0, -1)}!`],
    ['an empty bearer value', () => ''],
    ['an overlong token', () => `silo_${'a'.repeat(500)}`],
  ])('answers %s with 401', async (_what, token) => {
    const res = await api(server, 'GET', '/api/items', {
      headers: { authorization: `Bearer ${token()}` },
    })
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/)
    expect(res.body).toEqual({ error: 'unauthorized', message: expect.any(String) })
  })

  it('answers a non-Bearer Authorization scheme with 401', async () => {
    const res = await api(server, 'GET', '/api/items', {
      headers: {
        authorization: `Basic ${Buffer.from(`x:${server.tokens.admin}`).toString('base64')}`,
      },
    })
    expect(res.status).toBe(401)
    expect(res.body.error).toBe('unauthorized')
  })

  it('refuses a viewer creating an item with 403 and creates nothing', async () => {
    const before = await itemCount()
    const res = await api(server, 'POST', '/api/items', {
      token: server.tokens.viewer,
      body: { part_number: 'VIEWER-1', item_type: 'part' },
    })
    expect(res.status).toBe(403)
    expect(res.body).toEqual({ error: 'forbidden', message: expect.any(String) })
    expect(await itemCount()).toBe(before)
  })

  it('refuses an editor on the admin routes with 403', async () => {
    const tokensBefore = (await server.app.db.query('SELECT id FROM api_tokens')).rows.length
    for (const [method, path, body] of [
      ['GET', '/api/admin/mode', undefined],
      ['PUT', '/api/admin/mode', { read_only: true }],
      ['GET', '/api/admin/tokens', undefined],
      ['POST', '/api/admin/tokens', { name: 'sneaky', role: 'admin' }],
      ['DELETE', '/api/admin/tokens/1', undefined],
    ] as const) {
      const res = await api(server, method, path, { token: server.tokens.editor, body })
      expect({ method, path, status: res.status, error: res.body?.error }).toEqual({
        method,
        path,
        status: 403,
        error: 'forbidden',
      })
    }
    expect(server.app.modes.mode).toBe('normal')
    expect((await server.app.db.query('SELECT id FROM api_tokens')).rows.length).toBe(tokensBefore)
  })
})

describe('roles per route group', () => {
  interface RouteCase {
    group: string
    method: string
    /** Prepares what the request needs (run as admin/editor) and returns path and body. */
    prepare: () => Promise<{ path: string; body?: unknown }>
    needs: Exclude<Who, 'anonymous'>
    ok: number
  }

  const routes: RouteCase[] = [
    {
      group: 'items read',
      method: 'GET',
      prepare: async () => ({ path: '/api/items' }),
      needs: 'viewer',
      ok: 200,
    },
    {
      group: 'items read',
      method: 'GET',
      prepare: async () => ({ path: `/api/items/${await createItemAsEditor()}` }),
      needs: 'viewer',
      ok: 200,
    },
    {
      group: 'items write',
      method: 'POST',
      prepare: async () => ({
        path: '/api/items',
        body: { part_number: uniquePn(), item_type: 'part' },
      }),
      needs: 'editor',
      ok: 201,
    },
    {
      group: 'items write',
      method: 'PATCH',
      prepare: async () => ({
        path: `/api/items/${await createItemAsEditor()}`,
        body: { description: 'changed' },
      }),
      needs: 'editor',
      ok: 200,
    },
    {
      group: 'items write',
      method: 'DELETE',
      prepare: async () => ({ path: `/api/items/${await createItemAsEditor()}` }),
      needs: 'editor',
      ok: 204,
    },
    {
      group: 'events',
      method: 'GET',
      prepare: async () => ({ path: '/api/events' }),
      needs: 'viewer',
      ok: 200,
    },
    {
      group: 'admin mode',
      method: 'GET',
      prepare: async () => ({ path: '/api/admin/mode' }),
      needs: 'admin',
      ok: 200,
    },
    {
      group: 'admin mode',
      method: 'PUT',
      // Setting the mode it already has: allowed requests change nothing for later cases.
      prepare: async () => ({ path: '/api/admin/mode', body: { read_only: false } }),
      needs: 'admin',
      ok: 200,
    },
    {
      group: 'admin tokens',
      method: 'GET',
      prepare: async () => ({ path: '/api/admin/tokens' }),
      needs: 'admin',
      ok: 200,
    },
    {
      group: 'admin tokens',
      method: 'POST',
      prepare: async () => ({ path: '/api/admin/tokens', body: { name: 'made', role: 'viewer' } }),
      needs: 'admin',
      ok: 201,
    },
    {
      group: 'admin tokens',
      method: 'DELETE',
      prepare: async () => ({
        path: `/api/admin/tokens/${(await createToken('doomed', 'viewer')).id}`,
      }),
      needs: 'admin',
      ok: 204,
    },
  ]

  const cases = routes.flatMap((route) =>
    (['anonymous', 'viewer', 'editor', 'admin'] as const).map((who) => {
      const expected = who === 'anonymous' ? 401 : RANK[who] >= RANK[route.needs] ? route.ok : 403
      return { ...route, who, expected }
    }),
  )

  it.each(cases)(
    '$group: $method as $who answers $expected',
    async ({ method, prepare, who, expected }) => {
      // Given whatever the route needs to exist
      const { path, body } = await prepare()
      // When the caller makes the request
      const status =
        path === '/api/events'
          ? await eventsStatus({ token: tokenOf(who) })
          : (await api(server, method, path, { token: tokenOf(who), body })).status
      // Then the status follows from the caller's role
      expect(status).toBe(expected)
    },
  )
})

describe('query tokens', () => {
  it('accepts ?token= on /api/events (for EventSource)', async () => {
    const client = new SseClient(server.url, { query: { token: server.tokens.viewer } })
    clients.push(client)
    const greeting = await client.waitForEvent('server.state')
    expect(client.status).toBe(200)
    expect(greeting.data).toEqual({ mode: 'normal' })
  })

  it('refuses a bad ?token= on /api/events with 401', async () => {
    expect(await eventsStatus({ query: { token: 'silo_not-a-real-token' } })).toBe(401)
  })

  it.each([['/api/items'], ['/api/items/X-1'], ['/api/admin/mode'], ['/api/admin/tokens']])(
    'does not accept ?token= on %s',
    async (path) => {
      const res = await api(server, 'GET', `${path}?token=${server.tokens.admin}`)
      expect(res.status).toBe(401)
      expect(res.body.error).toBe('unauthorized')
    },
  )
})

describe('token lifecycle', () => {
  it('returns a new token once; listing never shows the secret', async () => {
    // When an admin creates a token
    const created = await createToken('cad-workbench', 'editor')
    // Then the answer carries the secret once, with the silo_ prefix
    expect(created).toEqual({
      id: expect.any(Number),
      name: 'cad-workbench',
      role: 'editor',
      prefix: created.token.slice(0, 10),
      created_at: expect.any(String),
      created_by: actorNamed('test-admin'),
      expires_at: null,
      token: expect.stringMatching(/^silo_[A-Za-z0-9_-]{20,}$/),
    })
    // And the new token works for its role
    const use = await api(server, 'POST', '/api/items', {
      token: created.token,
      body: { part_number: uniquePn(), item_type: 'part' },
    })
    expect(use.status).toBe(201)

    // When the tokens are listed
    const list = await api(server, 'GET', '/api/admin/tokens', { token: server.tokens.admin })
    // Then the new token is there, without its secret; no listed token shows any secret
    expect(list.status).toBe(200)
    expect(list.body.tokens).toContainEqual({
      id: created.id,
      name: 'cad-workbench',
      role: 'editor',
      prefix: created.prefix,
      created_at: created.created_at,
      created_by: actorNamed('test-admin'),
      expires_at: null,
    })
    for (const entry of list.body.tokens) expect(entry).not.toHaveProperty('token')
    const text = JSON.stringify(list.body)
    for (const secret of [created.token, ...Object.values(server.tokens)]) {
      expect(text).not.toContain(secret)
    }
  })

  it('stores only a sha256 hash of each token', async () => {
    const created = await createToken('hash-check', 'viewer')
    const secrets = [created.token, ...Object.values(server.tokens)]
    const { rows } = await server.app.db.query<{ token_hash: string }>(
      'SELECT token_hash FROM api_tokens',
    )
    const hashes = rows.map((r) => r.token_hash)
    for (const secret of secrets) {
      expect(hashes).not.toContain(secret)
      expect(hashes).toContain(hashToken(secret))
    }
    // No column of the table holds a secret either
    const all = JSON.stringify((await server.app.db.query('SELECT * FROM api_tokens')).rows)
    for (const secret of secrets) expect(all).not.toContain(secret)
  })

  it('a revoked token stops working, on the API and on the event stream', async () => {
    // Given a working token
    const created = await createToken('short-lived', 'viewer')
    expect((await api(server, 'GET', '/api/items', { token: created.token })).status).toBe(200)
    expect(await eventsStatus({ token: created.token })).toBe(200)
    // When an admin revokes it
    const revoke = await api(server, 'DELETE', `/api/admin/tokens/${created.id}`, {
      token: server.tokens.admin,
    })
    expect(revoke.status).toBe(204)
    // Then it is refused everywhere and no longer listed
    const after = await api(server, 'GET', '/api/items', { token: created.token })
    expect(after.status).toBe(401)
    expect(after.body.error).toBe('unauthorized')
    expect(await eventsStatus({ token: created.token })).toBe(401)
    expect(await eventsStatus({ query: { token: created.token } })).toBe(401)
    const list = await api(server, 'GET', '/api/admin/tokens', { token: server.tokens.admin })
    expect(list.body.tokens.map((t: { id: number }) => t.id)).not.toContain(created.id)
    // And revoking it again is a 404
    const again = await api(server, 'DELETE', `/api/admin/tokens/${created.id}`, {
      token: server.tokens.admin,
    })
    expect(again.status).toBe(404)
    expect(again.body).toEqual({ error: 'not_found', message: expect.any(String) })
  })

  it.each([
    [{ name: '', role: 'viewer' }],
    [{ name: 'x', role: 'root' }],
    [{ name: 'x' }],
    [{ name: 'x', role: 'viewer', token: 'silo_chosen-by-client' }],
  ])('refuses creating a token from %j with 400 and creates none', async (body) => {
    const before = (await server.app.db.query('SELECT id FROM api_tokens')).rows.length
    const res = await api(server, 'POST', '/api/admin/tokens', { token: server.tokens.admin, body })
    expect(res.status).toBe(400)
    expect(res.body).toEqual({ error: expect.any(String), message: expect.any(String) })
    expect((await server.app.db.query('SELECT id FROM api_tokens')).rows.length).toBe(before)
  })
})

describe('secrets in logs', () => {
  it('never writes a token to a log line, from a header or from ?token=', async () => {
    // Given a token made through the API and one that does not exist
    const made = await createToken('log-check', 'admin')
    const bogus = `silo_${'Q'.repeat(43)}`
    // When requests carry them as bearer headers and as ?token= on the event stream
    await api(server, 'GET', '/api/items', { token: server.tokens.viewer })
    await api(server, 'POST', '/api/items', {
      token: server.tokens.editor,
      body: { part_number: uniquePn(), item_type: 'part' },
    })
    await api(server, 'GET', '/api/admin/tokens', { token: made.token })
    await api(server, 'GET', '/api/items', { token: bogus })
    expect(await eventsStatus({ query: { token: server.tokens.admin } })).toBe(200)
    expect(await eventsStatus({ query: { token: made.token, types: 'item.created' } })).toBe(200)
    expect(await eventsStatus({ query: { token: bogus } })).toBe(401)
    await api(server, 'GET', `/api/items?token=${server.tokens.viewer}`)
    await api(server, 'GET', `/api/nowhere?token=${server.tokens.viewer}`)
    // Then the requests were logged, but no line holds any secret
    expect(server.rawLogs.some((line) => line.includes('/api/events'))).toBe(true)
    const secrets = [...Object.values(server.tokens), made.token, bogus]
    const leaks = server.rawLogs.filter((line) => secrets.some((s) => line.includes(s)))
    expect(leaks).toEqual([])
  })

  it('never logs a ?token= whose parameter name is percent-encoded', async () => {
    // Given a URL spelling the parameter name as "%74oken", which the query parser decodes to
    // "token", so that auth accepts it just the same
    const secret = (await createToken('encoded-name', 'viewer')).token
    const abort = new AbortController()
    const res = await fetch(`${server.url}/api/events?%74oken=${secret}`, { signal: abort.signal })
    abort.abort()
    expect(res.status).toBe(200)
    // Then the secret is in no log line all the same
    expect(server.rawLogs.filter((line) => line.includes(secret))).toEqual([])
  })
})

describe('every route declares a role', () => {
  /**
   * A bare Fastify with the real auth plugin and the principals it needs; `database` stands in
   * for the real plugin.
   */
  async function bareAppWithAuth() {
    const app = Fastify()
    await app.register(
      fp(
        async (a) => {
          a.decorate('db', {} as never)
        },
        { name: 'database' },
      ),
    )
    await app.register(principalsPlugin)
    await app.register(authPlugin)
    return app
  }

  it('refuses to register a route without config.role', async () => {
    const app = await bareAppWithAuth()
    try {
      expect(() => app.get('/unguarded', async () => 'oops')).toThrow(/declares no role/)
      expect(() => app.post('/unguarded', { config: {} }, async () => 'oops')).toThrow(
        /declares no role/,
      )
    } finally {
      await app.close()
    }
  })

  it('refuses it in an encapsulated child plugin too', async () => {
    const app = await bareAppWithAuth()
    let thrown: unknown
    await app.register(async (child) => {
      try {
        child.get('/child-unguarded', async () => 'oops')
      } catch (err) {
        thrown = err
      }
    })
    await app.ready()
    expect(String(thrown)).toMatch(/declares no role/)
    await app.close()
  })

  it('accepts a route that declares one', async () => {
    const app = await bareAppWithAuth()
    app.get('/public', { config: { role: 'none' } }, async () => ({ ok: true }))
    await app.ready()
    const res = await app.inject({ method: 'GET', url: '/public' })
    expect(res.statusCode).toBe(200)
    await app.close()
  })
})
