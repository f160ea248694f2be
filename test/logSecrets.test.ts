import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, startServer, type TestServer } from './support/server.js'

/**
 * No secret in any log line, whatever the shape of the URL that carries it (README, "Security").
 * The event stream accepts `?token=`; the malformed spellings below fail auth, and so used to be
 * logged as they came.
 */

/** Sends `path` byte for byte (no URL normalisation), reads the status, hangs up. */
function rawGet(server: TestServer, path: string, headers: Record<string, string> = {}) {
  return new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, headers }, (res) => {
      resolve(res.statusCode ?? 0)
      req.destroy()
    })
    req.on('error', reject)
    req.end()
  })
}

describe.each(['info', 'debug'])('secrets in the log at level %s', (level) => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer({ overrides: { log: { level } } })
  })
  afterAll(async () => {
    await server?.close()
  })

  it('logs every request on the event stream without the token it carried', async () => {
    // Given a live token, and its secret part as it would appear in any spelling
    const made = await api(server, 'POST', '/api/admin/tokens', {
      token: server.tokens.admin,
      body: { name: `log-${level}`, role: 'viewer' },
    })
    const token = made.body.token as string
    const secret = token.slice('silo_'.length)
    const encoded = encodeURIComponent(token).replace('_', '%5F')

    // When the token is sent in well-formed and in malformed query strings, and as a header
    const statuses: Record<string, number> = {}
    for (const path of [
      `/api/events?token=${token}`,
      `/api/events?%74oken=${token}`,
      `/api/events?token=${encoded}`,
      `/api/events?types=item.created&token=${token}`,
      `/api/events?last_event_id=0?token=${token}`,
      `/api/events?token[]=${token}`,
      `/api/events?;token=${token}`,
      `/api/events?t%00oken=${token}`,
      `/api/events?token%3d=${token}`,
      `/api/events?${token}`,
      `/api/items?token=${token}`,
      `/api/nowhere/${token}?token=${token}`,
    ]) {
      statuses[path] = await rawGet(server, path)
    }
    statuses.header = await rawGet(server, '/api/events', { authorization: `Bearer ${token}` })

    // Then the well-formed spellings were accepted (the secret was live) and the rest refused
    expect(statuses[`/api/events?token=${token}`]).toBe(200)
    expect(statuses[`/api/events?%74oken=${token}`]).toBe(200)
    expect(statuses[`/api/events?token=${encoded}`]).toBe(200)
    expect(statuses.header).toBe(200)
    expect(statuses[`/api/events?token[]=${token}`]).toBe(401)
    // And each request was logged, with its path and parameter names
    const urls = server.logs
      .map((line) => (line.req as { url?: string } | undefined)?.url)
      .filter((url): url is string => url !== undefined)
    expect(urls).toContain('/api/events?token=[REDACTED]')
    expect(urls).toContain('/api/events?types=[REDACTED]&token=[REDACTED]')
    expect(urls.filter((url) => url.startsWith('/api/events')).length).toBeGreaterThanOrEqual(11)
    // But no line of the whole log holds the secret, in any spelling
    expect(server.rawLogs.filter((line) => line.includes(secret))).toEqual([])
    expect(server.rawLogs.filter((line) => line.includes(encoded))).toEqual([])
  })
})
