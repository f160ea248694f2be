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
})
