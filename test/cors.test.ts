import { afterEach, describe, expect, it } from 'vitest'
import { startServer, type TestServer } from './support/server.js'
import { SseClient } from './support/sseClient.js'

let server: TestServer
afterEach(async () => {
  await server?.close()
})

function preflight(origin: string) {
  return fetch(`${server.url}/api/items`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type',
    },
  })
}

describe('CORS', () => {
  it('is off unless origins are configured', async () => {
    server = await startServer()
    const res = await fetch(`${server.url}/health`, { headers: { origin: 'https://cad.example' } })
    expect(res.headers.get('access-control-allow-origin')).toBeNull()
  })

  it('allows only the configured origins, also on the event stream', async () => {
    server = await startServer({ overrides: { server: { cors_origins: ['https://cad.example'] } } })
    const allowed = await preflight('https://cad.example')
    const other = await preflight('https://evil.example')
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://cad.example')
    expect(other.headers.get('access-control-allow-origin')).toBeNull()

    const client = new SseClient(server.url, {
      token: server.tokens.viewer,
      headers: { Origin: 'https://cad.example' },
    })
    await client.waitForEvent('server.state')
    client.close()
    expect(client.headers['access-control-allow-origin']).toBe('https://cad.example')
  })

  it.each(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'])(
    'lets a configured origin, and no other, send %s with the headers the API reads',
    async (method) => {
      // Given one configured origin
      server = await startServer({
        overrides: { server: { cors_origins: ['https://cad.example'] } },
      })
      const headers = 'authorization,content-type,if-match,if-none-match,last-event-id,range'
      const ask = (origin: string) =>
        fetch(`${server.url}/api/items/P-1`, {
          method: 'OPTIONS',
          headers: {
            origin,
            'access-control-request-method': method,
            'access-control-request-headers': headers,
          },
        })
      // When a page on it preflights the method with every request header the API reads
      const allowed = await ask('https://cad.example')
      // Then the method and each header are allowed
      expect(allowed.status).toBe(204)
      expect(allowed.headers.get('access-control-allow-origin')).toBe('https://cad.example')
      const methods = (allowed.headers.get('access-control-allow-methods') ?? '').split(/\s*,\s*/)
      expect(methods).toContain(method)
      const allowedHeaders = (allowed.headers.get('access-control-allow-headers') ?? '')
        .toLowerCase()
        .split(/\s*,\s*/)
      for (const header of headers.split(',')) expect(allowedHeaders).toContain(header)
      // And a page on another origin is not allowed (without Allow-Origin the browser refuses)
      const other = await ask('https://evil.example')
      expect(other.headers.get('access-control-allow-origin')).toBeNull()
    },
  )

  it('exposes the response headers clients read', async () => {
    server = await startServer({ overrides: { server: { cors_origins: ['https://cad.example'] } } })
    const res = await fetch(`${server.url}/api/items`, {
      headers: { origin: 'https://cad.example', authorization: `Bearer ${server.tokens.viewer}` },
    })
    const exposed = (res.headers.get('access-control-expose-headers') ?? '').toLowerCase()
    for (const header of ['etag', 'retry-after', 'content-disposition', 'content-range']) {
      expect(exposed.split(/\s*,\s*/)).toContain(header)
    }
  })
})
