import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { api, startServer, type TestServer } from './support/server.js'
import {
  type SseClient,
  closeStreams,
  expectStillLive,
  openGreetedStream,
  openStream,
} from './support/sseClient.js'

/**
 * Browser sessions (README "Web console"): a token is traded once for an HttpOnly,
 * SameSite=Strict cookie, stored only as a hash, that ends with its token, at its lifetime and
 * at sign-out, taking its event streams with it; cross-site writes with it are refused.
 */

let server: TestServer
beforeAll(async () => {
  server = await startServer({ overrides: { server: { trust_proxy: true } } })
})
afterEach(() => closeStreams())
afterAll(() => server?.close())

interface Session {
  cookie: string
  setCookie: string
  body: any
}

async function signIn(token: string, headers: Record<string, string> = {}): Promise<Session> {
  const res = await api(server, 'POST', '/api/session', { body: { token }, headers })
  expect(res.status, JSON.stringify(res.body)).toBe(201)
  const setCookie = res.headers.get('set-cookie') ?? ''
  const cookie = /^(silo_session=[^;]+)/.exec(setCookie)?.[1]
  expect(cookie).toBeDefined()
  return { cookie: cookie as string, setCookie, body: res.body }
}

async function newToken(role: string, extra: Record<string, unknown> = {}) {
  const res = await api(server, 'POST', '/api/admin/tokens', {
    token: server.tokens.admin,
    body: { name: `session-${role}-${Math.random().toString(36).slice(2, 8)}`, role, ...extra },
  })
  expect(res.status).toBe(201)
  return res.body as { id: number; token: string; name: string }
}

const withCookie = (session: Session, headers: Record<string, string> = {}) => ({
  headers: { cookie: session.cookie, ...headers },
})

async function itemExists(partNumber: string): Promise<boolean> {
  const res = await api(server, 'GET', `/api/items/${partNumber}`, { token: server.tokens.viewer })
  return res.status === 200
}

function sessionStream(session: Session): Promise<SseClient> {
  return openGreetedStream(server, { token: undefined, headers: { cookie: session.cookie } })
}

async function expectClosedWith(stream: SseClient, reason: string): Promise<void> {
  await stream.ended
  expect(stream.events.at(-1)).toEqual({ type: 'stream.closed', data: { reason } })
}

describe('signing in', () => {
  it('trades a token for an HttpOnly, SameSite=Strict cookie that the database knows only by its hash', async () => {
    const editor = await newToken('editor')
    const session = await signIn(editor.token)
    expect(session.setCookie).toMatch(/HttpOnly/i)
    expect(session.setCookie).toMatch(/SameSite=Strict/i)
    expect(session.setCookie).toMatch(/Path=\//)
    // Plain http: a Secure cookie would never come back.
    expect(session.setCookie).not.toMatch(/Secure/i)
    expect(session.body).toMatchObject({ token_id: editor.id, name: editor.name, role: 'editor' })
    expect(JSON.stringify(session.body)).not.toContain(editor.token)

    const secret = session.cookie.slice('silo_session='.length)
    const { rows } = await server.app.db.query<Record<string, unknown>>('SELECT * FROM sessions')
    expect(JSON.stringify(rows)).not.toContain(secret)
    expect(rows.some((r) => r.token_id == editor.id)).toBe(true)

    const who = await api(server, 'GET', '/api/session', withCookie(session))
    expect(who.status).toBe(200)
    expect(who.body).toMatchObject({ token_id: editor.id, role: 'editor' })
    const create = await api(server, 'POST', '/api/items', {
      body: { part_number: 'SESSION-1', item_type: 'part' },
      ...withCookie(session, { origin: server.url, 'sec-fetch-site': 'same-origin' }),
    })
    expect(create.status).toBe(201)
  })

  it('never writes the session secret or the token it was made from to the log, even at debug level', async () => {
    const debug = await startServer({ overrides: { log: { level: 'debug' } } })
    try {
      const signed = await api(debug, 'POST', '/api/session', {
        body: { token: debug.tokens.editor },
      })
      expect(signed.status).toBe(201)
      const cookie = /^(silo_session=[^;]+)/.exec(
        signed.headers.get('set-cookie') ?? '',
      )?.[1] as string
      const secret = cookie.slice('silo_session='.length)
      await api(debug, 'GET', '/api/items', { headers: { cookie } })
      await api(debug, 'POST', '/api/items', {
        body: { part_number: 'LOGGED-NOT', item_type: 'part' },
        headers: { cookie, origin: 'https://evil.example' },
      })
      await api(debug, 'DELETE', '/api/session', { headers: { cookie, origin: debug.url } })
      const log = debug.rawLogs.join('\n')
      expect(log.length).toBeGreaterThan(0)
      expect(log).not.toContain(secret)
      expect(log).not.toContain(debug.tokens.editor)
    } finally {
      await debug.close()
    }
  })

  it('marks the cookie Secure when the page came over https (behind a proxy)', async () => {
    const viewer = await newToken('viewer')
    const session = await signIn(viewer.token, { 'x-forwarded-proto': 'https' })
    expect(session.setCookie).toMatch(/Secure/i)
  })

  it('refuses a wrong token with 401 and stores nothing', async () => {
    const before = await server.app.db.query('SELECT count(*)::int AS n FROM sessions')
    const res = await api(server, 'POST', '/api/session', { body: { token: 'silo_not-a-token' } })
    expect(res.status).toBe(401)
    expect(res.body.error).toBe('unauthorized')
    expect(res.headers.get('set-cookie')).toBeNull()
    const after = await server.app.db.query('SELECT count(*)::int AS n FROM sessions')
    expect(after.rows).toEqual(before.rows)
  })

  it('keeps the role of the token: a viewer session cannot write', async () => {
    const session = await signIn((await newToken('viewer')).token)
    const res = await api(server, 'POST', '/api/items', {
      body: { part_number: 'SESSION-VIEWER', item_type: 'part' },
      ...withCookie(session, { origin: server.url }),
    })
    expect(res.status).toBe(403)
    expect(await itemExists('SESSION-VIEWER')).toBe(false)
  })
})

describe('cross-site requests', () => {
  it('refuses a forged write that carries the cookie, and changes nothing', async () => {
    const session = await signIn((await newToken('editor')).token)
    const forged: Record<string, string>[] = [
      { origin: 'https://evil.example' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: 'https://sub.evil.example' },
    ]
    for (const headers of forged) {
      const res = await api(server, 'POST', '/api/items', {
        body: { part_number: 'FORGED', item_type: 'part' },
        ...withCookie(session, headers),
      })
      expect(res.status, JSON.stringify(headers)).toBe(403)
      expect(res.body.error).toBe('cross_site_refused')
    }
    expect(await itemExists('FORGED')).toBe(false)
    // Reading is not a change; a cross-site page cannot read the answer anyway (no CORS).
    const read = await api(
      server,
      'GET',
      '/api/items',
      withCookie(session, { 'sec-fetch-site': 'cross-site' }),
    )
    expect(read.status).toBe(200)
  })

  it('refuses a sign-in from another site', async () => {
    const viewer = await newToken('viewer')
    const res = await api(server, 'POST', '/api/session', {
      body: { token: viewer.token },
      headers: { origin: 'https://evil.example' },
    })
    expect(res.status).toBe(403)
    expect(res.headers.get('set-cookie')).toBeNull()
  })

  it('leaves bearer-token clients alone: an API client sends no browser headers to judge', async () => {
    const res = await api(server, 'POST', '/api/items', {
      token: server.tokens.editor,
      body: { part_number: 'BEARER-CROSS', item_type: 'part' },
      headers: { origin: 'https://tool.example' },
    })
    expect(res.status).toBe(201)
  })
})

describe('a session ends with its rights, and takes its streams', () => {
  it('at sign-out: stream.closed signed_out, the cookie stops working, the token works on', async () => {
    const viewer = await newToken('viewer')
    const session = await signIn(viewer.token)
    const stream = await sessionStream(session)
    const apiStream = await openGreetedStream(server, { token: viewer.token })

    const out = await api(
      server,
      'DELETE',
      '/api/session',
      withCookie(session, { origin: server.url }),
    )
    expect(out.status).toBe(204)
    expect(out.headers.get('set-cookie')).toMatch(/silo_session=;.*Max-Age=0/i)

    await expectClosedWith(stream, 'signed_out')
    expect((await api(server, 'GET', '/api/session', withCookie(session))).status).toBe(401)
    await expectStillLive(server, apiStream, 'AFTER-SIGN-OUT')
  })

  it('when its token is revoked: stream.closed token_revoked, and the cookie is refused', async () => {
    const viewer = await newToken('viewer')
    const session = await signIn(viewer.token)
    const stream = await sessionStream(session)

    const revoke = await api(server, 'DELETE', `/api/admin/tokens/${viewer.id}`, {
      token: server.tokens.admin,
    })
    expect(revoke.status).toBe(204)

    await expectClosedWith(stream, 'token_revoked')
    const again = openStream(server, { token: undefined, headers: { cookie: session.cookie } })
    await again.connected()
    expect(again.status).toBe(401)
    const { rows } = await server.app.db.query('SELECT 1 FROM sessions WHERE token_id = $1', [
      viewer.id,
    ])
    expect(rows).toEqual([])
  })

  it('when the session is deleted behind this process: the sweep ends its stream, then the cookie is refused', async () => {
    const session = await signIn((await newToken('viewer')).token)
    const stream = await sessionStream(session)
    await server.app.db.query('DELETE FROM sessions')
    await expectClosedWith(stream, 'signed_out')
    // The session was remembered when the stream opened; the sweep forgot it as it ended it.
    expect((await api(server, 'GET', '/api/session', withCookie(session))).status).toBe(401)
  })
})

describe('session lifetime', () => {
  it('ends the session and its streams at server.session_lifetime', async () => {
    const short = await startServer({ overrides: { server: { session_lifetime: '3s' } } })
    try {
      const res = await api(short, 'POST', '/api/session', { body: { token: short.tokens.viewer } })
      expect(res.status).toBe(201)
      expect(res.headers.get('set-cookie')).toMatch(/Max-Age=[23];/)
      const cookie = /^(silo_session=[^;]+)/.exec(
        res.headers.get('set-cookie') ?? '',
      )?.[1] as string
      const stream = await openGreetedStream(short, { token: undefined, headers: { cookie } })
      await stream.ended
      expect(stream.events.at(-1)).toEqual({
        type: 'stream.closed',
        data: { reason: 'session_expired' },
      })
      expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(res.body.expires_at))
      const after = await api(short, 'GET', '/api/items', { headers: { cookie } })
      expect(after.status).toBe(401)
      expect(after.body.message).toMatch(/session/)
    } finally {
      await short.close()
    }
  })
})
