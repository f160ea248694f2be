import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { runCli, siloEnv } from './support/child.js'
import { testDatabaseServer } from './support/postgres.js'
import { api, freshDataDir, removeDataDir, startServer, type TestServer } from './support/server.js'
import {
  type SseClient,
  closeStreams,
  expectStillLive,
  openGreetedStream,
  openStream,
} from './support/sseClient.js'

/**
 * A right is checked for as long as it is used (README "Tokens" and "The event stream"): a
 * stream ends with `stream.closed` when the token that opened it is revoked, by the API or
 * behind the server's back, or expires. The replica case is in test/replicas.test.ts.
 */

let server: TestServer

beforeAll(async () => {
  server = await startServer()
})
afterEach(() => closeStreams())
afterAll(async () => {
  await server?.close()
})

async function createToken(body: Record<string, unknown>) {
  const res = await api(server, 'POST', '/api/admin/tokens', { token: server.tokens.admin, body })
  expect(res.status).toBe(201)
  return res.body as { id: number; token: string; expires_at: string | null }
}

/** The same token's stream twice: with the Authorization header and with `?token=`. */
function openBothWays(token: string): Promise<SseClient[]> {
  return Promise.all([
    openGreetedStream(server, { token }),
    openGreetedStream(server, { token: undefined, query: { token } }),
  ])
}

/** Resolves with the status of a new stream's response head (closing it again). */
async function reconnectStatus(options: Parameters<typeof openStream>[1]): Promise<number> {
  const client = openStream(server, options)
  await client.connected()
  client.close()
  return client.status
}

async function expectClosedWith(streams: SseClient[], reason: string): Promise<void> {
  await Promise.all(streams.map((s) => s.ended))
  for (const stream of streams) {
    expect(stream.events.at(-1)).toEqual({ type: 'stream.closed', data: { reason } })
    expect(stream.events.filter((e) => e.type === 'stream.closed')).toHaveLength(1)
  }
}

async function expectRefusedBothWays(token: string): Promise<void> {
  expect(await reconnectStatus({ token })).toBe(401)
  expect(await reconnectStatus({ token: undefined, query: { token } })).toBe(401)
}

describe('revocation ends open streams', () => {
  it('through the admin API: stream.closed token_revoked is the last event, the response ends, reconnecting gets 401', async () => {
    // Given a token with two open streams, and a stream of another token
    const revoked = await createToken({ name: 'revoked-viewer', role: 'viewer' })
    const streams = await openBothWays(revoked.token)
    const bystander = await openGreetedStream(server)

    // When an admin revokes the token
    const res = await api(server, 'DELETE', `/api/admin/tokens/${revoked.id}`, {
      token: server.tokens.admin,
    })
    expect(res.status).toBe(204)

    // Then both of its streams end with stream.closed, and the client's reconnect is refused
    await expectClosedWith(streams, 'token_revoked')
    await expectRefusedBothWays(revoked.token)
    // And the other token's stream goes on, with what is written next
    await expectStillLive(server, bystander, 'AFTER-REVOKE')
    for (const stream of streams) expect(stream.stored).toEqual([])
  })

  it('behind the server, straight in the database (as the CLI does from another process)', async () => {
    // Given a token with two open streams
    const revoked = await createToken({ name: 'cli-revoked', role: 'viewer' })
    const streams = await openBothWays(revoked.token)

    // When the token is deleted without the server taking part: by the CLI in another process
    // where that can share the database (PostgreSQL), by a direct delete on PGlite (one process)
    if (testDatabaseServer()) {
      const cli = await runCli(['token', 'revoke', String(revoked.id)], siloEnv(server.dataDir))
      expect(cli.stderr).toBe('')
      expect(cli.code).toBe(0)
    } else {
      await server.app.db.query('DELETE FROM api_tokens WHERE id = $1', [revoked.id])
    }

    // Then the server's check of open streams ends them
    await expectClosedWith(streams, 'token_revoked')
    await expectRefusedBothWays(revoked.token)
  })
})

describe('expiry', () => {
  it('ends open streams with stream.closed token_expired at the expiry; then the token is refused', async () => {
    // Given a token that expires in a few seconds, with two open streams
    const expiring = await createToken({ name: 'expiring', role: 'viewer', expires_in: '4s' })
    const streams = await openBothWays(expiring.token)

    // When its expiry passes, then its streams end with stream.closed
    await expectClosedWith(streams, 'token_expired')
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(expiring.expires_at as string))

    // And the token is refused everywhere, saying why
    await expectRefusedBothWays(expiring.token)
    const use = await api(server, 'GET', '/api/items', { token: expiring.token })
    expect(use.status).toBe(401)
    expect(use.body).toEqual({ error: 'unauthorized', message: 'token expired' })
  })

  it('is set with expires_in or expires_at and shown on creation and in the list', async () => {
    const at = new Date(Date.now() + 86_400_000).toISOString()
    const byMoment = await createToken({ name: 'until-tomorrow', role: 'viewer', expires_at: at })
    expect(byMoment.expires_at).toBe(at)
    const byDuration = await createToken({ name: 'for-30-days', role: 'viewer', expires_in: '30d' })
    expect(Date.parse(byDuration.expires_at as string)).toBeGreaterThan(
      Date.now() + 29 * 86_400_000,
    )

    const list = await api(server, 'GET', '/api/admin/tokens', { token: server.tokens.admin })
    const expiries = new Map(
      list.body.tokens.map((t: { id: number; expires_at: string | null }) => [t.id, t.expires_at]),
    )
    expect(expiries.get(byMoment.id)).toBe(at)
    expect(expiries.get(byDuration.id)).toBe(byDuration.expires_at)
    // And a token made without one never expires
    const { rows } = await server.app.db.query<{ id: number }>(
      "SELECT id::float8 AS id FROM api_tokens WHERE name = 'test-viewer'",
    )
    expect(expiries.get(Number(rows[0]?.id))).toBeNull()
  })

  it('is set from the CLI with --expires-in, and token list shows it', async () => {
    const dir = freshDataDir()
    try {
      const env = siloEnv(dir)
      const created = await runCli(
        ['token', 'create', '--role', 'viewer', '--name', 'contractor', '--expires-in', '30d'],
        env,
      )
      expect(created.stderr).toBe('')
      expect(created.code).toBe(0)
      const expiry = /, expires (\S+) \(shown only now\)/.exec(created.stdout)?.[1] as string
      expect(Date.parse(expiry)).toBeGreaterThan(Date.now() + 29 * 86_400_000)
      const list = await runCli(['token', 'list'], env)
      expect(list.stdout).toMatch(new RegExp(`\texpires ${expiry}\tcontractor$`, 'm'))

      const refused = await runCli(
        ['token', 'create', '--role', 'viewer', '--name', 'x', '--expires-in', 'soon'],
        env,
      )
      expect(refused.code).toBe(2)
      expect(refused.stderr).toMatch(/--expires-in must be a duration/)
    } finally {
      removeDataDir(dir)
    }
  })

  it.each([
    [{ expires_in: '1h', expires_at: '2099-01-01T00:00:00Z' }],
    [{ expires_in: '0s' }],
    [{ expires_in: 'tomorrow' }],
    [{ expires_in: 3600 }],
    [{ expires_at: '2000-01-01T00:00:00Z' }],
    [{ expires_at: 'next week' }],
  ])('refuses creating a token with %j with 400 and creates none', async (expiry) => {
    const before = (await server.app.db.query('SELECT id FROM api_tokens')).rows.length
    const res = await api(server, 'POST', '/api/admin/tokens', {
      token: server.tokens.admin,
      body: { name: 'bad-expiry', role: 'viewer', ...expiry },
    })
    expect(res.status).toBe(400)
    expect(res.body).toEqual({ error: expect.any(String), message: expect.any(String) })
    expect((await server.app.db.query('SELECT id FROM api_tokens')).rows.length).toBe(before)
  })
})
