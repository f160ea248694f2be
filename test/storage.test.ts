import { Client } from 'minio'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type BlackHole,
  type S3Server,
  S3_ACCESS_KEY,
  S3_SECRET_KEY,
  minioConfig,
  startBlackHole,
  startS3,
} from './support/s3.js'
import { eventually } from './support/eventually.js'
import { api, startServer, type TestServer } from './support/server.js'
import { type SseClient, openGreetedStream, closeStreams } from './support/sseClient.js'

/**
 * Storage health (README "Modes and signals", "Probes") against a real S3 server (s3rver) spoken to by the app's real
 * `minio` client: a failing store turns the server `degraded` and back, a black-holed one does
 * not hang anything, and read-only wins over degraded.
 *
 * No fixed sleeps: tests wait for the `server.state` event, or poll a condition in a bounded
 * loop that only waits when the condition does not hold yet.
 */

const PING = { health_interval: '200ms', failure_threshold: 2 }

let server: TestServer | undefined
let s3: S3Server | undefined
let blackHole: BlackHole | undefined

afterEach(async () => {
  closeStreams()
  await server?.close()
  await s3?.close()
  await blackHole?.close()
  server = s3 = blackHole = undefined
})

async function startWithS3(): Promise<{ server: TestServer; s3: S3Server }> {
  s3 = await startS3()
  // A generous ping timeout: s3rver shares this busy process, and a slow answer is not an outage.
  server = await startServer({
    overrides: { storage: { minio: s3.minioConfig(), timeout: '2s', ...PING } },
  })
  return { server, s3 }
}

/** An SSE subscriber that has received its greeting, so it sees every later mode change. */
const subscribe = (s: TestServer) => openGreetedStream(s)

function modeChange(client: SseClient, mode: string, previous: string) {
  return client.waitForEvent(
    'server.state',
    (e) => e.data.mode === mode && e.data.previous === previous,
  )
}

async function ready(s: TestServer) {
  const res = await api(s, 'GET', '/ready')
  return { http: res.status, ...(res.body as Record<string, unknown>) }
}

async function health(s: TestServer) {
  const res = await api(s, 'GET', '/health')
  expect(res.status).toBe(200)
  return res.body as { status: string; mode: string }
}

async function setReadOnly(s: TestServer, readOnly: boolean) {
  const res = await api(s, 'PUT', '/api/admin/mode', {
    token: s.tokens.admin,
    body: { read_only: readOnly },
  })
  expect(res.status).toBe(200)
  return res.body as { mode: string; read_only: boolean; storage: string }
}

describe('storage health against a real S3 server', () => {
  it('starts in normal mode with storage ok while s3rver answers', async () => {
    const { server, s3 } = await startWithS3()
    const client = await subscribe(server)
    expect(client.events[0]?.data).toEqual({ mode: 'normal' })
    expect(await health(server)).toEqual({ status: 'ok', mode: 'normal' })
    expect(await ready(server)).toMatchObject({
      http: 200,
      mode: 'normal',
      database: 'ok',
      storage: 'ok',
    })
    // The ping really reached s3rver: it created the configured bucket there.
    const minio = new Client({
      endPoint: '127.0.0.1',
      port: s3.port,
      useSSL: false,
      accessKey: S3_ACCESS_KEY,
      secretKey: S3_SECRET_KEY,
    })
    expect(await minio.bucketExists('silo')).toBe(true)
  })

  it('degrades when s3rver stops, keeps metadata writable, and recovers when it restarts', async () => {
    const { server, s3 } = await startWithS3()
    const client = await subscribe(server)

    await s3.stop()
    const degraded = await modeChange(client, 'degraded', 'normal')
    expect(degraded.data.reason).toEqual(expect.any(String))
    expect(await health(server)).toEqual({ status: 'ok', mode: 'degraded' })
    // Still ready: the database answers, so the instance stays in rotation.
    expect(await ready(server)).toMatchObject({
      http: 200,
      status: 'ready',
      mode: 'degraded',
      database: 'ok',
      storage: 'unavailable',
    })
    expect(
      server.logs.some((l) => l.mode === 'degraded' && l.previous === 'normal'),
      'one log line for the mode change',
    ).toBe(true)

    // Metadata writes do not need object storage.
    const created = await api(server, 'POST', '/api/items', {
      token: server.tokens.editor,
      body: { part_number: 'DEG-1', description: 'made while degraded', item_type: 'part' },
    })
    expect(created.status).toBe(201)
    await client.waitForEvent('item.created', (e) => e.data.part_number === 'DEG-1')
    const fetched = await api(server, 'GET', '/api/items/DEG-1', { token: server.tokens.viewer })
    expect(fetched.status).toBe(200)
    expect(fetched.body.description).toBe('made while degraded')

    await s3.restart()
    await modeChange(client, 'normal', 'degraded')
    expect(await health(server)).toEqual({ status: 'ok', mode: 'normal' })
    expect(await ready(server)).toMatchObject({ http: 200, mode: 'normal', storage: 'ok' })
  })

  it('degrades on a black-holed endpoint without hanging requests or the monitor', async () => {
    blackHole = await startBlackHole()
    const s = await startServer({
      overrides: {
        storage: {
          minio: minioConfig(blackHole.port),
          timeout: '400ms',
          ...PING,
        },
      },
    })
    server = s
    const client = await subscribe(s)
    // Either the greeting already says degraded or the change arrives later.
    await client.waitForEvent('server.state', (e) => e.data.mode === 'degraded')

    // Requests answer while every storage ping hangs until its timeout.
    const list = await api(s, 'GET', '/api/items', { token: s.tokens.viewer })
    expect(list.status).toBe(200)
    expect(await ready(s)).toMatchObject({
      http: 200,
      mode: 'degraded',
      database: 'ok',
      storage: 'unavailable',
    })
    expect(await health(s)).toEqual({ status: 'ok', mode: 'degraded' })

    // The monitor keeps pinging: every ping times out and counts, none hangs forever...
    const monitor = s.app.storageMonitor
    const threshold = s.config.storage.failure_threshold
    const seen = Math.max(monitor.consecutiveFailures, threshold)
    await eventually(() => monitor.consecutiveFailures >= seen + 3, 'more failed pings')
    const hole = blackHole
    expect(hole.accepted, 'the pings reached the black hole').toBeGreaterThan(0)
    // ...and each timed-out ping gives its connection back instead of piling them up.
    await eventually(() => hole.open <= 1, 'timed-out connections to close')

    // When the endpoint starts answering, the next ping brings the server back.
    await hole.close()
    const port = hole.port
    s3 = await startS3({ port })
    await modeChange(client, 'normal', 'degraded')
    expect(await ready(s)).toMatchObject({ http: 200, mode: 'normal', storage: 'ok' })
  })

  it('read-only wins over degraded, and turning it off while storage is down gives degraded', async () => {
    const { server, s3 } = await startWithS3()
    const client = await subscribe(server)
    await s3.stop()
    await modeChange(client, 'degraded', 'normal')

    expect(await setReadOnly(server, true)).toMatchObject({
      mode: 'read-only',
      read_only: true,
      storage: 'unavailable',
    })
    await modeChange(client, 'read-only', 'degraded')
    expect(await health(server)).toEqual({ status: 'ok', mode: 'read-only' })
    expect(await ready(server)).toMatchObject({
      http: 200,
      mode: 'read-only',
      storage: 'unavailable',
    })
    const refused = await api(server, 'POST', '/api/items', {
      token: server.tokens.editor,
      body: { part_number: 'RO-1', item_type: 'part' },
    })
    expect(refused.status).toBe(503)
    expect(refused.body.error).toBe('server_read_only')

    expect(await setReadOnly(server, false)).toMatchObject({
      mode: 'degraded',
      read_only: false,
      storage: 'unavailable',
    })
    await modeChange(client, 'degraded', 'read-only')
    expect(await health(server)).toEqual({ status: 'ok', mode: 'degraded' })
  })
})
