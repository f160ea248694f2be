import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { eventually } from './support/eventually.js'
import { api, startServer, type TestServer } from './support/server.js'
import { closeStreams, expectStillLive, openGreetedStream } from './support/sseClient.js'

/**
 * Streams and connections are bounded (README "Limits and timeouts"): caps per token and in all,
 * answered 429 before any stream byte; connections that never finish a request are dropped by
 * the server's timeouts; probes and API calls are still answered with every stream slot taken.
 */

let server: TestServer

afterEach(async () => {
  closeStreams()
  await server?.close()
})

/** Asks for a stream with fetch, as any HTTP client would; reads the whole answer. */
async function askForStream(token: string) {
  const res = await fetch(`${server.url}/api/events`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
  })
  return { status: res.status, headers: res.headers, text: await res.text() }
}

function expectTooManyStreams(answer: Awaited<ReturnType<typeof askForStream>>, key: string) {
  expect(answer.status).toBe(429)
  expect(answer.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/)
  expect(answer.headers.get('content-type')).toMatch(/^application\/json/)
  // The error body and nothing of a stream: no retry:, no greeting
  expect(JSON.parse(answer.text)).toEqual({
    error: 'too_many_streams',
    message: expect.stringContaining(`events.${key}`),
  })
}

describe('events.max_streams_per_token', () => {
  it('answers a token over its cap 429 too_many_streams with Retry-After, streaming nothing; other tokens still get streams', async () => {
    // Given a cap of 2 streams per token, and a viewer holding 2
    server = await startServer({ overrides: { events: { max_streams_per_token: 2 } } })
    await openGreetedStream(server)
    await openGreetedStream(server)

    // When it asks for a third, then it is refused before any stream byte
    expectTooManyStreams(await askForStream(server.tokens.viewer), 'max_streams_per_token')
    // And another token still gets its streams
    await openGreetedStream(server, { token: server.tokens.editor })
    await openGreetedStream(server, { token: server.tokens.editor })
  })

  it('gives the slot of a stream that closed to the next one', async () => {
    // Given a viewer holding its one allowed stream
    server = await startServer({ overrides: { events: { max_streams_per_token: 1 } } })
    const first = await openGreetedStream(server)
    expectTooManyStreams(await askForStream(server.tokens.viewer), 'max_streams_per_token')

    // When that stream's client goes away
    first.close()
    await eventually(
      async () => (await api(server, 'GET', '/ready')).body.sse_clients === 0,
      'the server to forget the closed stream',
    )

    // Then the viewer can open a stream again
    const again = await openGreetedStream(server)
    expect(again.status).toBe(200)
  })
})

describe('events.max_streams', () => {
  it('refuses every token once one client holds every slot, and still answers probes and API calls', async () => {
    // Given 3 stream slots in all, every one of them held by one viewer
    server = await startServer({ overrides: { events: { max_streams: 3 } } })
    for (let i = 0; i < 3; i++) await openGreetedStream(server)

    // When it, or anyone else, asks for another stream, then it is refused
    expectTooManyStreams(await askForStream(server.tokens.viewer), 'max_streams')
    expectTooManyStreams(await askForStream(server.tokens.admin), 'max_streams')

    // And the probes and the API still answer other clients
    expect((await api(server, 'GET', '/health')).status).toBe(200)
    expect((await api(server, 'GET', '/ready')).body).toMatchObject({
      status: 'ready',
      sse_clients: 3,
    })
    const created = await api(server, 'POST', '/api/items', {
      token: server.tokens.editor,
      body: { part_number: 'WITH-ALL-SLOTS-TAKEN', item_type: 'part' },
    })
    expect(created.status).toBe(201)
  })

  it('defaults to what the file limit allows, keeping a reserve', async () => {
    server = await startServer()
    const { maxConnections } = server.app.server
    expect(server.config.events.max_streams).toBeGreaterThan(0)
    expect(maxConnections - server.config.events.max_streams).toBeGreaterThanOrEqual(128)
  })
})

/** A raw connection that sends `bytes` and resolves with everything it got once it is closed. */
function rawConnection(bytes: string): { socket: Socket; closed: Promise<string> } {
  const socket = connect(server.port, '127.0.0.1')
  if (bytes) socket.write(bytes)
  let received = ''
  socket.on('data', (data) => (received += data.toString('latin1')))
  socket.on('error', () => {})
  return { socket, closed: new Promise((resolve) => socket.on('close', () => resolve(received))) }
}

describe('server timeouts', () => {
  it('drop connections that never send a whole request, while event streams outlive every timeout', async () => {
    // Given short timeouts, and an open event stream
    server = await startServer({
      overrides: { server: { headers_timeout: '300ms', request_timeout: '600ms' } },
    })
    const stream = await openGreetedStream(server)

    // When clients connect and send nothing, half a request head, or half a body
    const silent = rawConnection('')
    const halfHead = rawConnection('GET /health HTTP/1.1\r\nHost: x\r\n')
    const halfBody = rawConnection(
      `POST /api/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.tokens.editor}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"part_',
    )

    // Then the server answers each 408 and closes it
    for (const connection of [silent, halfHead, halfBody]) {
      const answer = await connection.closed
      expect(answer).toMatch(/^HTTP\/1\.1 408 /)
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({
        error: 'request_timeout',
        message: expect.stringContaining('server.headers_timeout'),
      })
    }
    // And the event stream, open for longer than both timeouts, still carries events
    await expectStillLive(server, stream, 'AFTER-TIMEOUTS')
  })
})
