import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  api,
  startServer,
  type TestServer,
  createItems as createItemsVia,
} from './support/server.js'
import { type SseClientOptions, openStream, closeStreams } from './support/sseClient.js'

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

// Prometheus reads values with Go's ParseFloat, which takes NaN in any case; prom-client
// writes `Nan` (the event-loop gauges before their first sample).
function parseValue(text: string): number {
  if (text === '+Inf') return Infinity
  if (text === '-Inf') return -Infinity
  if (/^nan$/i.test(text)) return NaN
  const value = Number(text)
  if (Number.isNaN(value)) throw new Error(`not a sample value: ${text}`)
  return value
}

/** The Prometheus text exposition format (0.0.4), sample lines only. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line)
    if (!match) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const pair of (match[2] ?? '').matchAll(
      /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g,
    )) {
      labels[pair[1] as string] = (pair[2] as string).replace(/\\(.)/g, (_, c: string) =>
        c === 'n' ? '\n' : c,
      )
    }
    samples.push({ name: match[1] as string, labels, value: parseValue(match[3] as string) })
  }
  return samples
}

class Scrape {
  constructor(
    readonly text: string,
    readonly samples: Sample[],
  ) {}

  /** The one sample called `name` whose labels include `labels`. */
  value(name: string, labels: Record<string, string> = {}): number {
    const found = this.series(name, labels)
    if (found.length !== 1) {
      throw new Error(`${found.length} samples match ${name} ${JSON.stringify(labels)}`)
    }
    return (found[0] as Sample).value
  }

  series(name: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    )
  }
}

let server: TestServer
const subscribe = (options: SseClientOptions = {}) => openStream(server, options)

afterEach(async () => {
  closeStreams()
  await server?.close()
})

async function scrape(): Promise<Scrape> {
  const res = await fetch(`${server.url}/metrics`, {
    headers: { authorization: `Bearer ${server.tokens.viewer}` },
  })
  expect(res.status).toBe(200)
  const text = await res.text()
  return new Scrape(text, parseExposition(text))
}

function createItems(n: number, prefix = 'P'): Promise<void> {
  return createItemsVia(server, n, prefix)
}

describe('GET /metrics', () => {
  it('refuses a request without a token with 401', async () => {
    server = await startServer()
    const res = await api(server, 'GET', '/metrics')
    expect(res.status).toBe(401)
    expect(res.body).toEqual({ error: 'unauthorized', message: 'missing bearer token' })
  })

  it('serves a viewer the Prometheus text format, every name prefixed silo_', async () => {
    server = await startServer()
    const res = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${server.tokens.viewer}` },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await res.text()
    const samples = parseExposition(text)
    const names = new Set(samples.map((s) => s.name))
    const declared = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string)
    expect(declared.filter((n) => !n.startsWith('silo_'))).toEqual([])
    expect([...names].filter((n) => !n.startsWith('silo_'))).toEqual([])
    for (const name of [
      'silo_sse_clients',
      'silo_server_mode',
      'silo_events_published_total',
      'silo_events_delivered_total',
      'silo_sse_stream_resets_total',
      'silo_sse_slow_consumer_cutoffs_total',
      'silo_storage_ping_failures_total',
      'silo_process_cpu_user_seconds_total',
      'silo_process_resident_memory_bytes',
      'silo_nodejs_heap_size_used_bytes',
    ]) {
      expect(names).toContain(name)
    }
  })
})

describe('event stream metrics', () => {
  it('counts open event streams as clients connect and leave', async () => {
    server = await startServer()
    expect((await scrape()).value('silo_sse_clients')).toBe(0)
    const first = subscribe()
    const second = subscribe()
    await Promise.all([first.waitForEvent('server.state'), second.waitForEvent('server.state')])
    expect((await scrape()).value('silo_sse_clients')).toBe(2)

    second.close()
    await vi.waitFor(async () => {
      expect((await api(server, 'GET', '/ready')).body.sse_clients).toBe(1)
    })
    expect((await scrape()).value('silo_sse_clients')).toBe(1)
  })

  it('counts each event published once and delivered once per subscriber that gets it', async () => {
    server = await startServer()
    const before = await scrape()
    const everything = [subscribe(), subscribe()]
    const oneItem = subscribe({ query: { part_number: 'D-1' } })
    await Promise.all([...everything, oneItem].map((c) => c.waitForEvent('server.state')))

    await createItems(3, 'D')
    await Promise.all(everything.map((c) => c.waitForStoredCount(3)))
    await oneItem.waitForStoredCount(1)

    const after = await scrape()
    const published = 'silo_events_published_total'
    const delivered = 'silo_events_delivered_total'
    expect(after.value(published) - before.value(published)).toBe(3)
    // 3 events to each of the two unfiltered streams, 1 to the filtered one.
    expect(after.value(delivered) - before.value(delivered)).toBe(3 + 3 + 1)
  })

  it('counts stream.reset by reason', async () => {
    server = await startServer({ overrides: { events: { retention_count: 5 } } })
    await createItems(20, 'R')
    await server.app.applyRetention()
    const resets = 'silo_sse_stream_resets_total'
    const before = await scrape()
    expect(before.value(resets, { reason: 'last_event_id_pruned' })).toBe(0)

    const pruned = subscribe({ lastEventId: 2 })
    await pruned.waitForEvent('stream.reset')
    const afterPruned = await scrape()
    expect(afterPruned.value(resets, { reason: 'last_event_id_pruned' })).toBe(1)
    expect(afterPruned.value(resets, { reason: 'last_event_id_unknown' })).toBe(0)

    const unknown = subscribe({ lastEventId: 9999 })
    await unknown.waitForEvent('stream.reset')
    const afterUnknown = await scrape()
    expect(afterUnknown.value(resets, { reason: 'last_event_id_unknown' })).toBe(1)
    expect(afterUnknown.value(resets, { reason: 'last_event_id_pruned' })).toBe(1)
    // Neither client was slow.
    expect(
      afterUnknown.value('silo_sse_slow_consumer_cutoffs_total', { reason: 'fell_behind' }),
    ).toBe(0)
  })
})

describe('stream cap and rights metrics', () => {
  it('counts streams refused with 429 by the cap that refused them', async () => {
    server = await startServer({
      overrides: { events: { max_streams_per_token: 1, max_streams: 2 } },
    })
    const refused = 'silo_sse_refused_total'
    const before = await scrape()
    expect(before.value(refused, { reason: 'max_streams_per_token' })).toBe(0)
    expect(before.value(refused, { reason: 'max_streams' })).toBe(0)
    await subscribe().waitForEvent('server.state')
    await subscribe({ token: server.tokens.editor }).waitForEvent('server.state')

    // One refused by the per-token cap, then two by the total (the admin holds none)
    const ask = (token: string) =>
      fetch(`${server.url}/api/events`, { headers: { authorization: `Bearer ${token}` } })
    for (const token of [server.tokens.viewer, server.tokens.admin, server.tokens.admin]) {
      const res = await ask(token)
      expect(res.status).toBe(429)
      await res.text()
    }

    const after = await scrape()
    expect(after.value(refused, { reason: 'max_streams_per_token' })).toBe(1)
    expect(after.value(refused, { reason: 'max_streams' })).toBe(2)
  })

  it('counts streams ended with stream.closed by reason', async () => {
    server = await startServer()
    const closed = 'silo_sse_closed_total'
    expect((await scrape()).value(closed, { reason: 'token_revoked' })).toBe(0)
    const made = await api(server, 'POST', '/api/admin/tokens', {
      token: server.tokens.admin,
      body: { name: 'to-revoke', role: 'viewer' },
    })
    const streams = [subscribe({ token: made.body.token }), subscribe({ token: made.body.token })]
    await Promise.all(streams.map((s) => s.waitForEvent('server.state')))

    await api(server, 'DELETE', `/api/admin/tokens/${made.body.id}`, { token: server.tokens.admin })
    await Promise.all(streams.map((s) => s.waitForEvent('stream.closed')))

    const after = await scrape()
    expect(after.value(closed, { reason: 'token_revoked' })).toBe(2)
    expect(after.value(closed, { reason: 'token_expired' })).toBe(0)
  })
})

describe('server mode metric', () => {
  function modes(s: Scrape): Record<string, number> {
    return Object.fromEntries(
      s.series('silo_server_mode').map((sample) => [sample.labels.mode, sample.value]),
    )
  }

  it('has one series per mode, exactly one at 1, and follows read-only', async () => {
    server = await startServer()
    expect(modes(await scrape())).toEqual({ normal: 1, 'read-only': 0, degraded: 0 })

    const on = await api(server, 'PUT', '/api/admin/mode', {
      token: server.tokens.admin,
      body: { read_only: true },
    })
    expect(on.status).toBe(200)
    expect(modes(await scrape())).toEqual({ normal: 0, 'read-only': 1, degraded: 0 })

    await api(server, 'PUT', '/api/admin/mode', {
      token: server.tokens.admin,
      body: { read_only: false },
    })
    expect(modes(await scrape())).toEqual({ normal: 1, 'read-only': 0, degraded: 0 })
  })
})

describe('HTTP request metric', () => {
  it('labels durations by route pattern and status, never by the raw URL', async () => {
    server = await startServer()
    await createItems(1, 'H')
    for (let i = 0; i < 3; i++) {
      expect(
        (await api(server, 'GET', '/api/items/H-0', { token: server.tokens.viewer })).status,
      ).toBe(200)
    }
    const missing = await api(server, 'GET', '/api/items/GONE-7', { token: server.tokens.viewer })
    expect(missing.status).toBe(404)
    expect((await api(server, 'GET', '/no/such/route/ZZ-9')).status).toBe(404)

    const s = await scrape()
    const count = 'silo_http_request_duration_seconds_count'
    const item = { method: 'GET', route: '/api/items/:pn' }
    expect(s.value(count, { ...item, status_code: '200' })).toBe(3)
    expect(s.value(count, { ...item, status_code: '404' })).toBe(1)
    expect(s.value(count, { method: 'POST', route: '/api/items', status_code: '201' })).toBe(1)
    expect(s.value(count, { method: 'GET', route: 'unmatched', status_code: '404' })).toBe(1)
    // The +Inf bucket holds every observation of its series.
    expect(
      s.value('silo_http_request_duration_seconds_bucket', {
        ...item,
        status_code: '200',
        le: '+Inf',
      }),
    ).toBe(3)
    const labelValues = s.samples.flatMap((sample) => Object.values(sample.labels))
    expect(labelValues.filter((v) => /H-0|GONE-7|ZZ-9|\/no\/such/.test(v))).toEqual([])
  })
})

describe('storage ping metrics', () => {
  it('observes every ping and counts the failed ones', async () => {
    server = await startServer()
    const count = 'silo_storage_ping_duration_seconds_count'
    const failures = 'silo_storage_ping_failures_total'
    const before = await scrape()

    await server.app.storageMonitor.check()
    const afterOk = await scrape()
    expect(afterOk.value(count) - before.value(count)).toBe(1)
    expect(afterOk.value(failures)).toBe(before.value(failures))

    // A plain file where the storage folder should be: the filesystem ping fails.
    const files = join(server.dataDir, 'files')
    rmSync(files, { recursive: true, force: true })
    writeFileSync(files, 'not a folder')
    await server.app.storageMonitor.check()
    const afterFailure = await scrape()
    expect(afterFailure.value(count) - before.value(count)).toBe(2)
    expect(afterFailure.value(failures) - before.value(failures)).toBe(1)
    rmSync(files)
    mkdirSync(files)
  })
})
