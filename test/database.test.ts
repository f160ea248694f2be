import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { killChildren, siloEnv, type SiloProcess, spawnSilo } from './support/child.js'
import { findPostgresBinaries, type PgCluster, startPgCluster } from './support/pgCluster.js'
import { api } from './support/server.js'
import { eventually } from './support/eventually.js'
import { SseClient } from './support/sseClient.js'

/**
 * PostgreSQL going away under a running server (README "Probes"): `/ready` says so, the
 * process and its event streams stay up, and everything recovers by itself when the database
 * returns. The test brings its own PostgreSQL cluster, since it stops and starts it; so it runs
 * whether or not SILO_TEST_DATABASE_URL is set, wherever the server binaries are installed.
 */

const binaries = findPostgresBinaries()

/** The advisory lock appendEvents takes to order event inserts (src/events/eventLog.ts). */
const EVENT_ORDER_LOCK = 5111
const TITLE = 'a PostgreSQL outage under a running server'

/** How long recovery may take: the LISTEN connection retries with backoff up to 5 s. */
const RECOVERY_DEADLINE_MS = 30_000

let cluster: PgCluster
const dirs: string[] = []
const clients: SseClient[] = []
const cleanups: (() => Promise<void>)[] = []

interface Silo {
  child: SiloProcess
  url: string
}

/** The real server process on database `database` of the test's own cluster. */
async function startSilo(database: string, dir: string): Promise<Silo> {
  const child = spawnSilo(siloEnv(dir, { SILO_DATABASE_URL: cluster.databaseUrl(database) }))
  const { url } = await child.listening()
  return { child, url }
}

/** A fresh database and the first server on it, with the admin token it printed. */
async function startFirstSilo(database: string): Promise<Silo & { token: string; dir: string }> {
  await cluster.psql(`CREATE DATABASE ${database}`)
  const dir = mkdtempSync(join(tmpdir(), 'silo-outage-'))
  dirs.push(dir)
  const silo = await startSilo(database, dir)
  const token = (await silo.child.waitForLine(/^ {2}(silo_\S+)$/))[1] as string
  return { ...silo, token, dir }
}

function subscribe(url: string, token: string, lastEventId?: number): SseClient {
  const client = new SseClient(url, { token, lastEventId })
  clients.push(client)
  return client
}

/** Polls /ready until it answers `status`; the process must stay up meanwhile. */
function readyWith(silo: Silo, status: number) {
  return eventually(
    async () => {
      if (!silo.child.running) throw new Error(`silo exited: ${silo.child.stderr}`)
      const res = await api(silo, 'GET', '/ready')
      return res.status === status ? res : undefined
    },
    `/ready answering ${status}`,
    { timeoutMs: RECOVERY_DEADLINE_MS },
  )
}

/** Waits until `count` sessions on `database` LISTEN for events (each server keeps one). */
function listeners(database: string, count: number) {
  return eventually(
    async () => {
      const n = Number(
        await cluster.psql(
          `SELECT count(*) FROM pg_stat_activity
           WHERE datname = '${database}' AND query = 'LISTEN "silo_events"'`,
        ),
      )
      return n >= count ? n : undefined
    },
    `${count} LISTEN session(s) on ${database}`,
    { timeoutMs: RECOVERY_DEADLINE_MS },
  )
}

interface EventRow {
  id: number
  type: string
  part_number: string | null
}

async function eventRows(database: string): Promise<EventRow[]> {
  const out = await cluster.psql(
    `SELECT coalesce(json_agg(json_build_object('id', id, 'type', type, 'part_number', part_number)
       ORDER BY id), '[]') FROM events`,
    database,
  )
  return JSON.parse(out) as EventRow[]
}

function received(client: SseClient): EventRow[] {
  return client.stored.map((e) => ({
    id: e.id as number,
    type: e.type,
    part_number: e.data.part_number ?? null,
  }))
}

/** A request's answer, or the error when none came (the connection failed). */
function answerOf<T>(request: Promise<T>): Promise<T | Error> {
  return request.catch((err: Error) => err)
}

function lastLines(child: SiloProcess): string {
  return [...child.lines.slice(-6), child.stderr].join('\n')
}

async function createItem(silo: Pick<Silo, 'url'>, token: string, partNumber: string) {
  return api(silo, 'POST', '/api/items', {
    token,
    body: { part_number: partNumber, item_type: 'part', description: `item ${partNumber}` },
  })
}

describe.skipIf(!binaries.available)(
  binaries.available ? TITLE : `${TITLE} (skipped: ${binaries.reason})`,
  () => {
    beforeAll(async () => {
      cluster = await startPgCluster()
    })

    afterEach(async () => {
      for (const client of clients.splice(0)) client.close()
      for (const cleanup of cleanups.splice(0)) await cleanup()
      await killChildren()
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
      // A test that failed during the outage must not leave the next one without a database.
      if (cluster && !cluster.running) await cluster.start()
    })

    afterAll(async () => {
      await cluster?.close()
    })

    it('turns /ready to 503 "unreachable" while PostgreSQL is down, keeps the process and its streams up, and recovers by itself', async () => {
      // Given a server with a connected SSE client that has seen some events
      const a = await startFirstSilo('outage')
      const { token } = a
      const before = await api(a, 'GET', '/ready')
      expect(before.status).toBe(200)
      expect(before.body).toMatchObject({ status: 'ready', database: 'ok' })
      const stayer = subscribe(a.url, token)
      await stayer.waitForEvent('server.state')
      for (let i = 0; i < 3; i++) {
        expect((await createItem(a, token, `BEFORE-${i}`)).status).toBe(201)
      }
      await stayer.waitForStoredCount(3)

      // When the database stops
      await cluster.stop()

      // Then readiness says so, liveness does not, and nothing else goes away
      const down = await readyWith(a, 503)
      expect(down.body).toMatchObject({
        status: 'not_ready',
        mode: 'normal',
        database: 'unreachable',
        shutting_down: false,
      })
      const health = await api(a, 'GET', '/health')
      expect(health.status).toBe(200)
      expect(health.body).toEqual({ status: 'ok', mode: 'normal' })
      expect(a.child.running).toBe(true)
      expect(stayer.closed).toBe(false)

      // When it comes back
      await cluster.start()

      // Then readiness returns without a restart, and so does the LISTEN connection
      const up = await readyWith(a, 200)
      expect(up.body).toMatchObject({ status: 'ready', database: 'ok', sse_clients: 1 })
      await listeners('outage', 1)

      // and the client that stayed connected gets a write made through this server ...
      expect((await createItem(a, token, 'AFTER-A')).status).toBe(201)
      await stayer.waitForEvent('item.created', (e) => e.data.part_number === 'AFTER-A')
      // ... and one made through another server, which reaches it only through NOTIFY
      const b = await startSilo('outage', a.dir)
      expect((await createItem(b, token, 'AFTER-B')).status).toBe(201)
      await stayer.waitForEvent('item.created', (e) => e.data.part_number === 'AFTER-B')

      // on the very same connection, with every event of the table, in order
      const rows = await eventRows('outage')
      expect(rows.map((r) => r.part_number)).toEqual([
        'BEFORE-0',
        'BEFORE-1',
        'BEFORE-2',
        'AFTER-A',
        'AFTER-B',
      ])
      expect(received(stayer)).toEqual(rows)
      expect(stayer.closed).toBe(false)
      expect(stayer.events.filter((e) => e.type === 'stream.reset')).toEqual([])

      // A client that reconnects with its Last-Event-ID, to either server, gets no gap
      const firstId = (rows[0] as EventRow).id
      const lastId = (rows[rows.length - 1] as EventRow).id
      for (const silo of [a, b]) {
        const again = subscribe(silo.url, token, firstId)
        await again.waitFor(() => again.lastId === lastId, `event ${lastId}`)
        expect(received(again)).toEqual(rows.slice(1))
        expect(again.events.filter((e) => e.type === 'stream.reset')).toEqual([])
      }

      // The process lived through it and still shuts down cleanly
      a.child.signal('SIGTERM')
      expect(await a.child.exited).toEqual({ code: 0, signal: null })
    })

    it('answers a write cut off by the outage and writes made while PostgreSQL is down with 503 database_unavailable, and leaves nothing half-done', async () => {
      // Given a server with a connected SSE client and some committed items
      const a = await startFirstSilo('writes')
      const { token } = a
      const stayer = subscribe(a.url, token)
      await stayer.waitForEvent('server.state')
      for (let i = 0; i < 3; i++) {
        expect((await createItem(a, token, `BEFORE-${i}`)).status).toBe(201)
      }

      // and a write held inside its transaction: another session holds the lock that orders
      // event inserts, so the write has inserted its item and waits to append its event
      const holder = new pg.Client({ connectionString: cluster.databaseUrl('writes') })
      holder.on('error', () => {})
      cleanups.push(() => holder.end().catch(() => {}))
      await holder.connect()
      await holder.query('BEGIN')
      await holder.query('SELECT pg_advisory_xact_lock($1)', [EVENT_ORDER_LOCK])
      const cutOff = answerOf(createItem(a, token, 'CUT-1'))
      await eventually(
        async () =>
          Number(
            await cluster.psql(
              `SELECT count(*) FROM pg_stat_activity
               WHERE datname = 'writes' AND wait_event = 'advisory'`,
            ),
          ) === 1,
        'the write waiting for the event lock',
        { timeoutMs: RECOVERY_DEADLINE_MS },
      )

      // When the database stops under it
      await cluster.stop()

      // Then the cut-off write and every write while down get a 503 database_unavailable
      const attempts = {
        'the write in flight': await cutOff,
        'a create while down': await answerOf(createItem(a, token, 'DOWN-1')),
        'an update while down': await answerOf(
          api(a, 'PATCH', '/api/items/BEFORE-0', { token, body: { description: 'changed' } }),
        ),
        'a delete while down': await answerOf(api(a, 'DELETE', '/api/items/BEFORE-1', { token })),
      }
      expect(a.child.exit, `silo exited during the outage:\n${lastLines(a.child)}`).toBeNull()
      // The write in flight may still have committed: fast shutdown ends the lock holder and
      // the waiter at nearly the same moment. Either it happened in full or not at all.
      const inFlight = attempts['the write in flight']
      const cutCommitted = !(inFlight instanceof Error) && inFlight.status === 201
      for (const [what, res] of Object.entries(attempts)) {
        if (res instanceof Error) throw new Error(`${what}: no answer (${res.message})`)
        if (what === 'the write in flight' && cutCommitted) continue
        expect(res.status, what).toBe(503)
        expect(res.body, what).toEqual({
          error: 'database_unavailable',
          message: expect.any(String),
        })
      }
      // And a new event stream is not refused (EventSource would give up for good on a 5xx):
      // it gets 200 with `retry:` and an end, and comes back later.
      const stream = await fetch(`${a.url}/api/events`, {
        headers: { authorization: `Bearer ${token}` },
      })
      expect(stream.status).toBe(200)
      expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/)
      expect(await stream.text()).toMatch(/^retry: \d+\n\n$/)
      expect(a.child.running).toBe(true)

      // When it comes back
      await cluster.start()
      await readyWith(a, 200)

      // Then none of the refused writes happened, not even in part ...
      for (const partNumber of cutCommitted ? ['DOWN-1'] : ['CUT-1', 'DOWN-1']) {
        expect((await api(a, 'GET', `/api/items/${partNumber}`, { token })).status).toBe(404)
      }
      const before0 = await api(a, 'GET', '/api/items/BEFORE-0', { token })
      expect(before0.body).toMatchObject({ description: 'item BEFORE-0' })
      expect((await api(a, 'GET', '/api/items/BEFORE-1', { token })).status).toBe(200)
      const items = (await cluster.psql('SELECT part_number FROM items ORDER BY 1', 'writes'))
        .split('\n')
        .filter(Boolean)
      const committed = ['BEFORE-0', 'BEFORE-1', 'BEFORE-2', ...(cutCommitted ? ['CUT-1'] : [])]
      expect(items).toEqual(committed)

      // ... the log holds exactly the events of what exists, and the client that stayed
      // connected has exactly those, then what comes next
      expect((await createItem(a, token, 'AFTER-1')).status).toBe(201)
      await stayer.waitForEvent('item.created', (e) => e.data.part_number === 'AFTER-1')
      const rows = await eventRows('writes')
      expect(rows.map((r) => [r.type, r.part_number])).toEqual(
        [...committed, 'AFTER-1'].map((pn) => ['item.created', pn]),
      )
      expect(received(stayer)).toEqual(rows)
      expect(stayer.closed).toBe(false)
    })
  },
)
