/**
 * CSV import benchmark: one silo server (a child process on a fresh data folder), SSE clients
 * connected beforehand, and a generated sheet of N rows posted to POST /api/import/csv.
 *
 *   npm run build --silent && npx tsx bench/importCsv.ts [--rows 10000 --clients 1]
 *
 * Phases: create (every row new: N item.created), dry run of the same file, the same file again
 * (nothing changes, no event), every description changed (N item.updated), then both exports.
 * For the phases that emit, it reports the request's round trip and the time until every SSE
 * client had every event, and checks that none was lost, duplicated or out of order. Last, the
 * floor: the create phase's bytes written by a bare node process to as many connections of the
 * same load client (bench/lib/byteFloor.ts), what the machine needs for the bytes alone. Prints
 * a summary and appends a section to docs/BENCHMARKS.md.
 */
import { loadavg } from 'node:os'
import { resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Pool } from 'undici'
import { analyseDeliveries, type DeliveryReport } from './lib/deliveries.js'
import { cpuTimeMs, peakResidentBytes, residentBytes } from './lib/procfs.js'
import { bytes, count, ms, publishRun } from './lib/report.js'
import { benchArgs, numberArg } from './lib/cli.js'
import { ROOT, SiloServer, stopOnSignals } from './lib/server.js'
import { fanOutFloor } from './lib/byteFloor.js'
import {
  type CapturedEvent,
  readEvents,
  SseLoad,
  typeIndex,
  type EventType,
} from './lib/sseLoad.js'
import { DEFAULT_BATCH_SIZE } from '../src/events/broker.js'

const USAGE = `usage: npm run build --silent && npx tsx bench/importCsv.ts [options]
  --rows N             data rows in the sheet (default 10000)
  --clients C          SSE clients connected before the import (default 1)
  --memory-window W    the server's events.memory_window (default: the server's own, 4096)
  --stall S            give up waiting for deliveries after S seconds without progress (default 30)
  --no-floor           skip the floor: the create phase's bytes written by a bare node process
                       to as many connections of the same client (bench/lib/byteFloor.ts)
  --main FILE          the server's entry point, e.g. an older build's dist/main.js (a before)
  --cpu-prof DIR       write a V8 CPU profile of the server into DIR (at its exit)
  --report FILE        where the section is appended (default docs/BENCHMARKS.md)
  --no-report          print the summary only`

const args = benchArgs(USAGE, {
  rows: { type: 'string', default: '10000' },
  clients: { type: 'string', default: '1' },
  'memory-window': { type: 'string' },
  stall: { type: 'string', default: '30' },
  'cpu-prof': { type: 'string' },
  main: { type: 'string' },
  'no-floor': { type: 'boolean', default: false },
})

const positive = (name: string) => numberArg(args, name, 'integer')

const rowCount = positive('rows')
const clientCount = positive('clients')
const stallMs = positive('stall') * 1000
const memoryWindow = args['memory-window'] === undefined ? undefined : positive('memory-window')

function log(line: string): void {
  process.stderr.write(`[importCsv] ${line}\n`)
}

function commandLine(): string {
  return `npm run build --silent && npx tsx bench/importCsv.ts ${process.argv.slice(2).join(' ')}`.trim()
}

/** A sheet of `rows` items; `version` goes into every description, so a new one changes all. */
function sheet(rows: number, version: number): string {
  const lines = ['part_number,description,item_type,material,mass_g']
  for (let i = 0; i < rows; i++) {
    const pn = `IMP-${String(i).padStart(6, '0')}`
    lines.push(`${pn},"Bracket ${i}, rev ${version}",part,steel,${(i % 997) + 0.5}`)
  }
  return `${lines.join('\n')}\n`
}

// The machine may be shared: the record says how busy it was.
const loadAtStart = loadavg()[0] as number
const cpuProfileDir = args['cpu-prof']
const server = await SiloServer.start({
  env: memoryWindow === undefined ? {} : { SILO_EVENTS_MEMORY_WINDOW: String(memoryWindow) },
  nodeArgs: cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir] : [],
  ...(args.main ? { mainJs: resolve(args.main) } : {}),
})
log(`server pid ${server.pid} at ${server.url}`)
stopOnSignals(() => server.stop())

const http = new Pool(server.url, { connections: 2 })
const auth = { authorization: `Bearer ${server.adminToken}` }
const load = new SseLoad({ baseUrl: server.url, token: server.adminToken })
let lastKnownId = 0

interface Posted {
  status: number
  body: string
  /** performance.now() when the request was handed to the HTTP client. */
  sentAt: number
  /** From sending to the whole answer read, in milliseconds. */
  roundTrip: number
  /** Server CPU (user + system) during the round trip, in milliseconds. */
  serverCpuMs: number
}

async function postCsv(csv: string, query = ''): Promise<Posted> {
  const cpuBefore = cpuTimeMs(server.pid)
  const sentAt = performance.now()
  const { statusCode, body } = await http.request({
    method: 'POST',
    path: `/api/import/csv${query}`,
    headers: { ...auth, 'content-type': 'text/csv' },
    body: csv,
  })
  const text = await body.text()
  const roundTrip = performance.now() - sentAt
  const posted = {
    status: statusCode,
    body: text,
    sentAt,
    roundTrip,
    serverCpuMs: cpuTimeMs(server.pid) - cpuBefore,
  }
  if (statusCode !== 200) throw new Error(`import answered ${statusCode}: ${text.slice(0, 300)}`)
  return posted
}

async function exportFile(format: 'csv' | 'ods'): Promise<{ ms: number; size: number }> {
  const started = performance.now()
  const { statusCode, body } = await http.request({
    method: 'GET',
    path: `/api/export/items.${format}`,
    headers: auth,
  })
  let size = 0
  for await (const chunk of body) size += (chunk as Buffer).length
  if (statusCode !== 200) throw new Error(`export ${format} answered ${statusCode}`)
  return { ms: performance.now() - started, size }
}

/** The phase's events as the server's log has them (a replay), in id order. */
async function publishedEvents(type: EventType, n: number): Promise<CapturedEvent[]> {
  let matching = 0
  const events = await readEvents(
    { baseUrl: server.url, token: server.adminToken },
    lastKnownId,
    (seen) => (seen[seen.length - 1]?.type === type ? ++matching : matching) >= n,
    120_000,
  )
  const published = events.filter((e) => e.type === type && e.id !== undefined)
  lastKnownId = Math.max(lastKnownId, ...published.map((e) => e.id as number))
  return published
}

interface EmittingPhase {
  published: CapturedEvent[]
  posted: Posted
  deliveries: DeliveryReport
  complete: boolean
  /** From sending the request to the last client having every event. */
  allDeliveredMs: number
  /** CPU time (ms) from sending the request until every client had every event. */
  cpu: { server: number; loadClient: number }
}

async function emittingPhase(type: EventType, csv: string): Promise<EmittingPhase> {
  load.beginPhase(type, rowCount)
  const serverCpuBefore = cpuTimeMs(server.pid)
  const loadCpuBefore = cpuTimeMs(process.pid)
  const posted = await postCsv(csv)
  const complete = await load.waitUntilAllReached(stallMs)
  const cpu = {
    server: cpuTimeMs(server.pid) - serverCpuBefore,
    loadClient: cpuTimeMs(process.pid) - loadCpuBefore,
  }
  const published = await publishedEvents(type, rowCount)
  const ids = published.map((e) => e.id as number)
  const sentAt = new Float64Array(ids.length).fill(posted.sentAt - load.epoch)
  const deliveries = analyseDeliveries(load.connections, typeIndex(type), { ids, sentAt })
  return {
    published,
    posted,
    deliveries,
    complete,
    allDeliveredMs: deliveries.lastDeliveryAt - (posted.sentAt - load.epoch),
    cpu,
  }
}

let created: EmittingPhase | undefined
const rows: string[][] = []
const row = (phase: string, figure: string, value: string) => rows.push([phase, figure, value])
let failed = false

function reportEmitting(label: string, result: EmittingPhase): void {
  const d = result.deliveries
  row(label, 'POST round trip (request sent → 200 read)', ms(result.posted.roundTrip))
  row(label, 'server CPU during the POST', ms(result.posted.serverCpuMs))
  row(
    label,
    `every SSE client had all ${count(rowCount)} events after (from request sent)`,
    result.complete ? ms(result.allDeliveredMs) : `incomplete (${ms(result.allDeliveredMs)})`,
  )
  row(
    label,
    'per-client completion p50 / max',
    `${ms(d.clientDone.p50 - (result.posted.sentAt - load.epoch))} / ${ms(d.clientDone.max - (result.posted.sentAt - load.epoch))}`,
  )
  row(
    label,
    'CPU until every client had every event: server / load client',
    `${ms(result.cpu.server)} / ${ms(result.cpu.loadClient)}`,
  )
  row(label, 'deliveries (events × clients)', count(d.delivered))
  row(label, 'lost / duplicated / out of order', `${d.lost} / ${d.duplicated} / ${d.outOfOrder}`)
  if (!result.complete || d.lost || d.duplicated || d.outOfOrder || d.unexpected) failed = true
  log(
    `${label}: POST ${ms(result.posted.roundTrip)}, all delivered after ${ms(result.allDeliveredMs)}; lost ${d.lost} dup ${d.duplicated} order ${d.outOfOrder}`,
  )
}

try {
  const opened = await load.open(clientCount, 100, rowCount + 64)
  if (opened.opened < clientCount) {
    failed = true
    log(`only ${opened.opened}/${clientCount} SSE clients connected`)
  }
  log(`${opened.opened} SSE client(s) connected in ${ms(opened.ms)}`)
  row('server', 'RSS before the first import', bytes(residentBytes(server.pid)))
  const first = sheet(rowCount, 1)
  row('file', 'rows / size', `${count(rowCount)} / ${bytes(Buffer.byteLength(first))}`)

  created = await emittingPhase('item.created', first)
  reportEmitting(`create (${count(rowCount)} new items)`, created)

  const dry = await postCsv(first, '?dry_run=true')
  row('dry run of the same file', 'POST round trip', ms(dry.roundTrip))
  row('dry run of the same file', 'server CPU during the POST', ms(dry.serverCpuMs))
  log(`dry run: ${ms(dry.roundTrip)}`)

  const eventsBefore = load.typeTotals()[typeIndex('item.updated')] as number
  const same = await postCsv(first)
  const unchanged = (JSON.parse(same.body) as { unchanged: number }).unchanged
  row('same file again (nothing changes)', 'POST round trip', ms(same.roundTrip))
  row('same file again (nothing changes)', 'server CPU during the POST', ms(same.serverCpuMs))
  row('same file again (nothing changes)', 'rows unchanged', count(unchanged))
  if (unchanged !== rowCount) failed = true
  log(`same file: ${ms(same.roundTrip)}, ${unchanged} unchanged`)

  const updated = await emittingPhase('item.updated', sheet(rowCount, 2))
  reportEmitting(`update (every description changed)`, updated)
  if (
    (load.typeTotals()[typeIndex('item.updated')] as number) - eventsBefore !==
    rowCount * clientCount
  ) {
    log('the unchanged import emitted events')
    failed = true
  }

  for (const format of ['csv', 'ods'] as const) {
    const exported = await exportFile(format)
    row(
      `export ${format.toUpperCase()}`,
      'GET round trip / size',
      `${ms(exported.ms)} / ${bytes(exported.size)}`,
    )
    log(`export ${format}: ${ms(exported.ms)}, ${bytes(exported.size)}`)
  }
  row(
    'server',
    'RSS after / peak (VmHWM)',
    `${bytes(residentBytes(server.pid))} / ${bytes(peakResidentBytes(server.pid))}`,
  )
} catch (err) {
  failed = true
  log(`failed: ${(err as Error).stack ?? String(err)}`)
} finally {
  load.close()
  await http.close().catch(() => {})
  await server.stop()
}

if (created && !args['no-floor']) {
  log(`floor: the create phase's bytes from a bare node process to ${count(clientCount)} clients`)
  try {
    const floor = await fanOutFloor({
      events: created.published,
      clients: clientCount,
      batchSize: DEFAULT_BATCH_SIZE,
      stallMs,
    })
    const label = 'floor: same bytes, bare node'
    row(
      label,
      `every client had all ${count(rowCount)} events after (from the first write)`,
      floor.complete ? ms(floor.allDeliveredMs) : `incomplete (${ms(floor.allDeliveredMs)})`,
    )
    row(
      label,
      'CPU until every client had every event: server / load client',
      `${ms(floor.cpu.server)} / ${ms(floor.cpu.loadClient)}`,
    )
    const d = floor.deliveries
    row(label, 'lost / duplicated / out of order', `${d.lost} / ${d.duplicated} / ${d.outOfOrder}`)
    log(`floor: all delivered after ${ms(floor.allDeliveredMs)}`)
    if (!floor.complete || d.lost || d.duplicated || d.outOfOrder) failed = true
  } catch (err) {
    failed = true
    log(`floor failed: ${(err as Error).stack ?? String(err)}`)
  }
}

publishRun(ROOT, {
  title: `CSV import, ${count(rowCount)} rows, ${count(clientCount)} SSE client${clientCount === 1 ? '' : 's'}`,
  failed,
  command: commandLine(),
  options: `${count(rowCount)} rows, ${count(clientCount)} SSE clients connected before the import, events.memory_window ${memoryWindow ?? 'default (4096)'}`,
  notes: [
    `Server: \`node ${args.main ?? 'dist/main.js'}\`, PGlite + filesystem storage in a fresh temp folder, log level warn; the clients run on the same cores`,
    `Load average (1 min) at start / end: ${loadAtStart.toFixed(2)} / ${(loadavg()[0] as number).toFixed(2)}`,
  ],
  headers: ['phase', 'figure', 'value'],
  rows,
  report: args['no-report'] ? undefined : (args.report as string),
})

process.exit(failed ? 1 : 0)
