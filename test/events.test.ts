import { connect } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  actorNamed,
  asSystem,
  api,
  startServer,
  type TestServer,
  createItems as createItemsVia,
} from './support/server.js'
import { type SseClientOptions, openStream, closeStreams } from './support/sseClient.js'

let server: TestServer
const subscribe = (options: SseClientOptions = {}) => openStream(server, options)

afterEach(async () => {
  closeStreams()
  await server?.close()
})

function createItems(n: number, prefix = 'P'): Promise<void> {
  return createItemsVia(server, n, prefix)
}

describe('GET /api/events', () => {
  it('answers 200 with SSE headers, retry first, then the current mode', async () => {
    server = await startServer()
    const client = subscribe()
    await client.waitForEvent('server.state')
    expect(client.status).toBe(200)
    expect(client.headers['content-type']).toMatch(/^text\/event-stream/)
    expect(client.headers['cache-control']).toBe('no-cache')
    expect(client.headers['x-accel-buffering']).toBe('no')
    expect(client.headers['content-encoding']).toBeUndefined()
    expect(client.retry).toBe(3000)
    expect(client.events[0]).toEqual({ type: 'server.state', data: { mode: 'normal' } })
  })

  it('answers HEAD with the stream headers and no body, and does not subscribe', async () => {
    server = await startServer()
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1')
    // Not end(): a client that half-closes may lose its answer. Connection: close ends it.
    socket.write(
      `HEAD /api/events HTTP/1.1\r\nHost: silo\r\nConnection: close\r\n` +
        `Authorization: Bearer ${server.tokens.viewer}\r\n\r\n`,
    )
    const chunks: Buffer[] = []
    for await (const chunk of socket) chunks.push(chunk as Buffer)
    const [head, body] = Buffer.concat(chunks).toString().split('\r\n\r\n')
    expect(head).toMatch(/^HTTP\/1\.1 200 /)
    expect(head).toMatch(/^content-type: text\/event-stream/im)
    expect(body).toBe('')
  })

  it('serves HTTP/1.0 clients an unframed body that ends with the connection', async () => {
    server = await startServer()
    const client = subscribe({ http10: true })
    await client.waitForEvent('server.state')
    expect(client.headers['transfer-encoding']).toBeUndefined()
    await createItems(2)
    await client.waitForStoredCount(2)
    expect(client.stored.map((e) => e.type)).toEqual(['item.created', 'item.created'])
    await server.close()
    await client.ended
    expect(client.events.at(-1)).toEqual({ type: 'server.state', data: { mode: 'shutting-down' } })
  })

  it('delivers item.created, item.updated and item.deleted as other clients write', async () => {
    server = await startServer()
    const client = subscribe()
    await client.waitForEvent('server.state')
    const token = server.tokens.editor
    await api(server, 'POST', '/api/items', {
      token,
      body: { part_number: 'A-1', item_type: 'assembly', description: 'frame' },
    })
    await api(server, 'PATCH', '/api/items/A-1', { token, body: { description: 'welded frame' } })
    await api(server, 'DELETE', '/api/items/A-1', { token })
    await client.waitForStoredCount(3)
    const editor = actorNamed('test-editor')
    expect(client.stored).toEqual([
      {
        id: 1,
        type: 'item.created',
        data: {
          part_number: 'A-1',
          description: 'frame',
          item_type: 'assembly',
          properties: {},
          version: 1,
          actor: editor,
        },
      },
      {
        id: 2,
        type: 'item.updated',
        data: { part_number: 'A-1', version: 2, actor: editor, description: 'welded frame' },
      },
      { id: 3, type: 'item.deleted', data: { part_number: 'A-1', version: 2, actor: editor } },
    ])
  })
})

describe('replay with Last-Event-ID', () => {
  it('replays events after Last-Event-ID without a gap or duplicate while writes continue', async () => {
    server = await startServer()
    const total = 400
    const writer = createItems(total, 'W')
    const received: number[] = []
    let rounds = 0
    // Disconnect after a varying number of events and reconnect from the last id seen, over and
    // over, while the writer keeps committing.
    while ((received[received.length - 1] ?? 0) < total) {
      const lastId = received[received.length - 1] ?? 0
      const client = subscribe({ lastEventId: lastId })
      const target = Math.min(total, lastId + 1 + ((rounds * 7) % 23))
      await client.waitFor(() => (client.lastId ?? 0) >= target, `event ${target}`)
      client.close()
      expect(client.events.some((e) => e.type === 'stream.reset')).toBe(false)
      received.push(...client.stored.map((e) => e.id as number))
      rounds++
    }
    expect(rounds).toBeGreaterThan(20)
    await writer
    const { rows } = await server.app.db.query<{ id: number }>(
      'SELECT id::float8 AS id FROM events ORDER BY id',
    )
    expect(received).toEqual(rows.map((r) => Number(r.id)))
    expect(received).toHaveLength(total)
  })

  it('continues after a server restart on the same data from the last id it saw', async () => {
    server = await startServer({ keepData: true })
    const dataDir = server.dataDir
    const first = subscribe()
    await createItems(5, 'R')
    await first.waitForStoredCount(5)
    const lastSeen = 3
    await server.close()

    server = await startServer({ dataDir })
    await createItems(2, 'S')
    const again = subscribe({ lastEventId: lastSeen })
    await again.waitForStoredCount(4)
    expect(again.stored.map((e) => e.id)).toEqual([4, 5, 6, 7])
    expect(again.stored.map((e) => e.data.part_number)).toEqual(['R-3', 'R-4', 'S-0', 'S-1'])
    expect(again.events.some((e) => e.type === 'stream.reset')).toBe(false)
  })

  it('treats a malformed Last-Event-ID as absent and streams live events only', async () => {
    server = await startServer()
    await createItems(3)
    const client = subscribe({ lastEventId: 'not-a-number' })
    await client.waitForEvent('server.state')
    await createItems(1, 'L')
    await client.waitForStoredCount(1)
    expect(client.status).toBe(200)
    expect(client.stored).toEqual([expect.objectContaining({ id: 4, type: 'item.created' })])
    expect(client.events.some((e) => e.type === 'stream.reset')).toBe(false)
  })

  it('accepts the id as ?last_event_id= for clients that cannot set headers', async () => {
    server = await startServer()
    await createItems(4)
    const client = subscribe({ query: { last_event_id: '2' } })
    await client.waitForStoredCount(2)
    expect(client.stored.map((e) => e.id)).toEqual([3, 4])
  })

  it('a malformed Last-Event-ID header does not hide a valid ?last_event_id=', async () => {
    server = await startServer()
    await createItems(4)
    const client = subscribe({ lastEventId: 'garbage', query: { last_event_id: '3' } })
    await client.waitForStoredCount(1)
    expect(client.stored.map((e) => e.id)).toEqual([4])
  })
})

describe('stream.reset', () => {
  it('is sent first when the requested id is older than the retained history', async () => {
    server = await startServer({ overrides: { events: { retention_count: 5 } } })
    await createItems(20)
    await server.app.applyRetention()
    const client = subscribe({ lastEventId: 2 })
    await client.waitForEvent('stream.reset')
    await createItems(1, 'N')
    await client.waitForStoredCount(1)
    const afterGreeting = client.events.slice(1)
    expect(afterGreeting[0]).toEqual({
      id: 20,
      type: 'stream.reset',
      data: { last_event_id: 2, oldest_available_id: 16 },
    })
    expect(client.stored.map((e) => e.id)).toEqual([21])
  })

  it('carries the id it resumes after, so reconnecting with it is not reset again', async () => {
    server = await startServer({ overrides: { events: { retention_count: 5 } } })
    await createItems(20)
    await server.app.applyRetention()
    const first = subscribe({ lastEventId: 2 })
    await first.waitForEvent('stream.reset')
    first.close()
    await createItems(1, 'N')
    // What EventSource resends: the last id it saw, else the one it had sent.
    const lastSeen = first.events.filter((e) => e.id !== undefined).at(-1)?.id ?? 2
    expect(lastSeen).toBe(20)
    const again = subscribe({ lastEventId: lastSeen })
    await again.waitForStoredCount(1)
    expect(again.stored.map((e) => e.id)).toEqual([21])
    expect(again.events.some((e) => e.type === 'stream.reset')).toBe(false)
  })

  it('replays normally from an id that is still retained', async () => {
    server = await startServer({ overrides: { events: { retention_count: 5 } } })
    await createItems(20)
    await server.app.applyRetention()
    const client = subscribe({ lastEventId: 15 })
    await client.waitForStoredCount(5)
    expect(client.stored.map((e) => e.id)).toEqual([16, 17, 18, 19, 20])
    expect(client.events.some((e) => e.type === 'stream.reset')).toBe(false)
  })

  it('is sent when the requested id is newer than the newest (the database was replaced)', async () => {
    server = await startServer()
    await createItems(2)
    const client = subscribe({ lastEventId: 9999 })
    await client.waitForEvent('stream.reset')
    await createItems(1, 'N')
    await client.waitForStoredCount(1)
    expect(client.events[1]).toEqual({
      id: 2,
      type: 'stream.reset',
      data: { last_event_id: 9999, oldest_available_id: 1 },
    })
    expect(client.stored.map((e) => e.id)).toEqual([3])
  })
})

describe('slow consumers', () => {
  // Large descriptions make the backlog far bigger than the socket buffers, so the server
  // really has to hold back.
  const description = 'x'.repeat(2000)

  async function publish(n: number, prefix: string): Promise<void> {
    const { createItem } = await import('../src/domain/items.js')
    for (let i = 0; i < n; i++) {
      await createItem(asSystem(server), {
        part_number: `${prefix}-${i}`,
        item_type: 'part',
        description,
      })
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  it('lose nothing: a socket that reads nothing while 10,000 events are published gets all of them in order', async () => {
    server = await startServer()
    const client = subscribe({ lastEventId: 0, paused: true })
    await vi.waitFor(() => expect(server.app.broker.subscriberCount).toBe(1))
    let peakBuffered = 0
    const { createItem } = await import('../src/domain/items.js')
    // Eight writers at a time: on PostgreSQL they use the pool; PGlite takes them in turn.
    for (let i = 0; i < 10_000; i += 8) {
      await Promise.all(
        Array.from({ length: 8 }, (_, k) =>
          createItem(asSystem(server), {
            part_number: `S-${i + k}`,
            item_type: 'part',
            description,
          }),
        ),
      )
      // Let the server do its socket work between commits, as it does between HTTP requests.
      await new Promise((resolve) => setImmediate(resolve))
      peakBuffered = Math.max(peakBuffered, server.app.broker.bufferedBytes)
    }
    // 10,000 events of ~2 kB is ~20 MB; the server holds back instead of buffering them.
    expect(peakBuffered).toBeLessThan(4 * 1024 * 1024)
    client.resume()
    await client.waitForStoredCount(10_000)
    const ids = client.stored.map((e) => e.id)
    expect(ids).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1))
    expect(client.events.some((e) => e.type === 'stream.reset')).toBe(false)
  }, 180_000)

  it('get stream.reset once they fall behind the retained history, then continue live', async () => {
    server = await startServer({
      overrides: { events: { retention_count: 100, memory_window: 16 } },
    })
    const client = subscribe({ lastEventId: 0, paused: true })
    await vi.waitFor(() => expect(server.app.broker.subscriberCount).toBe(1))
    await publish(3000, 'B')
    await server.app.applyRetention()
    client.resume()
    await client.waitForEvent('stream.reset')
    await publish(1, 'LIVE')
    await client.waitForEvent('item.created', (e) => e.data.part_number === 'LIVE-0')
    const resetAt = client.events.findIndex((e) => e.type === 'stream.reset')
    const before = client.events
      .slice(0, resetAt)
      .filter((e) => e.id !== undefined && e.type !== 'stream.reset')
      .map((e) => e.id)
    // What arrived before the reset is an unbroken prefix of the log.
    expect(before).toEqual(Array.from({ length: before.length }, (_, i) => i + 1))
    expect(before.length).toBeLessThan(3000)
    expect(client.events[resetAt]?.data).toEqual({
      last_event_id: before.length,
      oldest_available_id: 2901,
    })
    expect(client.lastId).toBe(3001)
  })
})

describe('filters and keep-alive', () => {
  it('narrows the stream with ?types= and ?part_number=', async () => {
    server = await startServer()
    const byType = subscribe({ query: { types: 'item.deleted,item.updated' } })
    const byPart = subscribe({ query: { part_number: 'F-1' } })
    await Promise.all([byType.waitForEvent('server.state'), byPart.waitForEvent('server.state')])
    await createItems(2, 'F')
    await api(server, 'PATCH', '/api/items/F-0', {
      token: server.tokens.editor,
      body: { description: 'changed' },
    })
    await api(server, 'DELETE', '/api/items/F-1', { token: server.tokens.editor })
    await byType.waitForStoredCount(2)
    await byPart.waitForStoredCount(2)
    expect(byType.stored.map((e) => [e.type, e.data.part_number])).toEqual([
      ['item.updated', 'F-0'],
      ['item.deleted', 'F-1'],
    ])
    expect(byPart.stored.map((e) => [e.type, e.data.part_number])).toEqual([
      ['item.created', 'F-1'],
      ['item.deleted', 'F-1'],
    ])
  })

  it('sends heartbeat events with no id at the configured interval', async () => {
    server = await startServer({ overrides: { events: { heartbeat_interval: '100ms' } } })
    const client = subscribe()
    await client.waitFor((events) => events.filter((e) => e.type === 'heartbeat').length >= 2)
    const beats = client.events.filter((e) => e.type === 'heartbeat')
    expect(beats[0]).toEqual({ type: 'heartbeat', data: {} })
  })

  it('accepts ?token= for browsers and still refuses a missing token with 401', async () => {
    server = await startServer()
    // No Authorization header: the token travels in the query, or not at all.
    const withQuery = openStream(server, {
      token: undefined,
      query: { token: server.tokens.viewer },
    })
    const without = openStream(server, { token: undefined })
    await withQuery.waitForEvent('server.state')
    await without.connected()
    expect(withQuery.status).toBe(200)
    expect(without.status).toBe(401)
  })
})

describe('clients that vanish', () => {
  it('are forgotten, and the stream goes on for everyone else', async () => {
    server = await startServer()
    const staying = subscribe()
    const leaving = Array.from({ length: 20 }, () => subscribe({ lastEventId: 0 }))
    await Promise.all([staying, ...leaving].map((c) => c.waitForEvent('server.state')))
    expect(server.app.broker.subscriberCount).toBe(21)
    await createItems(3, 'V')
    for (const c of leaving) c.close()
    await createItems(3, 'X')
    await staying.waitForStoredCount(6)
    await vi.waitFor(() => expect(server.app.broker.subscriberCount).toBe(1))
    expect(staying.stored.map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6])
  })
})

describe('while shutting down', () => {
  it('a new stream gets 200, retry and an end even once the database is closed', async () => {
    const s = await startServer()
    try {
      s.app.lifecycle.beginShutdown()
      // The database closes late in shutdown, while clients may still reconnect on a kept-alive
      // connection; answering them must not need it (a 5xx would make EventSource give up).
      await s.app.db.close()
      const res = await fetch(`${s.url}/api/events`, {
        headers: { authorization: `Bearer ${s.tokens.viewer}` },
      })
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
      expect(await res.text()).toMatch(/^retry: \d+\n\n$/)
    } finally {
      await s.close().catch(() => {})
    }
  })
  it('a connection that never sends a request does not hold the close up', async () => {
    server = await startServer()
    const client = subscribe()
    await client.waitForEvent('server.state')
    // A client's spare connection: open, silent. Node counts it as a request under way.
    const silent = connect(server.port, '127.0.0.1')
    silent.on('error', () => {})
    const silentClosed = new Promise((resolve) => silent.once('close', resolve))
    await vi.waitFor(async () => {
      const count = await new Promise<number>((resolve, reject) =>
        server.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
      )
      expect(count).toBe(2)
    })
    await server.close()
    await silentClosed
    expect(client.events.at(-1)).toEqual({ type: 'server.state', data: { mode: 'shutting-down' } })
  })
})
