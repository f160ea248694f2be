/**
 * SSE fan-out benchmark: one silo server (a child process) and N raw-socket SSE clients.
 *
 *   npm run bench [-- --clients 1000 --rate 50 --events 500 --burst 2000 --writers 4 --idle 10]
 *
 * Phases: baseline RSS with no client; N idle clients (RSS, CPU); items published at a fixed
 * rate (publish-to-receive latency, loss, duplicates, order); a burst from several writers
 * (time until every client had every event, deliveries/s); SIGTERM with every client still
 * connected. Prints a summary and appends a section to docs/BENCHMARKS.md.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { analyseDeliveries, distribution, type DeliveryReport } from './lib/deliveries.js'
import { benchArgs, numberArg } from './lib/cli.js'
import { requireOpenFilesFor } from './lib/fdLimit.js'
import { withInspector } from './lib/inspector.js'
import { ItemWriter, publishAtRate, publishBurst, type PublishTimes } from './lib/itemWriter.js'
import { CostMeter, type PhaseCost } from './lib/cost.js'
import { ProbeSampler } from './lib/probe.js'
import { peakResidentBytes, residentBytes } from './lib/procfs.js'
import { bytes, count, ms, percent, publishRun } from './lib/report.js'
import { ROOT, SiloServer, stopOnSignals } from './lib/server.js'
import { createdIds, SseLoad, typeIndex } from './lib/sseLoad.js'

const USAGE = `usage: npm run bench -- [options]
  --clients N        SSE connections (default 1000)
  --rate R           items per second in the latency phase (default 50)
  --events M         items published in the latency phase (default 500)
  --burst B          items published as fast as possible in the burst phase (default 2000)
  --writers W        concurrent writers in the burst phase (default 4)
  --idle S           seconds of the idle measurement window (default 10)
  --connect-concurrency C   connection handshakes in flight at once (default 100)
  --stall S          give up waiting for deliveries after S seconds without progress (default 15)
  --cpu-prof DIR     write a V8 CPU profile of the server into DIR (at its exit)
  --report FILE      where the section is appended (default docs/BENCHMARKS.md)
  --no-report        print the summary only`

const args = benchArgs(USAGE, {
  clients: { type: 'string', default: '1000' },
  rate: { type: 'string', default: '50' },
  events: { type: 'string', default: '500' },
  burst: { type: 'string', default: '2000' },
  writers: { type: 'string', default: '4' },
  idle: { type: 'string', default: '10' },
  'connect-concurrency': { type: 'string', default: '100' },
  stall: { type: 'string', default: '15' },
  'cpu-prof': { type: 'string' },
})

const positive = (name: string, allowZero = false) =>
  numberArg(args, name, allowZero ? 'non-negative' : 'positive')

const options = {
  clients: Math.floor(positive('clients')),
  rate: positive('rate'),
  events: Math.floor(positive('events', true)),
  burst: Math.floor(positive('burst', true)),
  writers: Math.floor(positive('writers')),
  idleMs: positive('idle', true) * 1000,
  connectConcurrency: Math.floor(positive('connect-concurrency')),
  stallMs: positive('stall') * 1000,
}

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`)

requireOpenFilesFor(options.clients)

/** What the command line looked like, for the record. */
function commandLine(): string {
  const given = process.argv.slice(2)
  if (process.env.npm_lifecycle_event === 'bench') {
    return given.length > 0 ? `npm run bench -- ${given.join(' ')}` : 'npm run bench'
  }
  return `npx tsx bench/fanout.ts ${given.join(' ')}`.trim()
}

interface PhaseResult {
  publish: PublishTimes
  deliveries: DeliveryReport
  complete: boolean
  cost: PhaseCost
  /** From the first request sent to the last delivery, in milliseconds. */
  completionMs: number
  resets: number
  /** GET /health round trips during the phase. */
  health: Awaited<ReturnType<ProbeSampler['stop']>>
}

const cpuProfileDir = args['cpu-prof']
const server = await SiloServer.start({
  nodeArgs: cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir] : [],
  inspect: true,
})
log(`silo pid ${server.pid} at ${server.url} (mode ${server.mode}); data in ${server.dataDir}`)
stopOnSignals(() => server.stop())

const writer = new ItemWriter(server.url, server.adminToken, options.writers)
const load = new SseLoad({ baseUrl: server.url, token: server.adminToken })
let lastKnownId = 0

interface MemoryReading {
  /** VmRSS as found, before the forced collection. */
  rssAsFound: number
  /** VmRSS after a forced full garbage collection. */
  rss: number
  heapUsed: number
  external: number
}

/**
 * The server's memory after a forced full GC (through its inspector): PGlite's start-up
 * leaves some hundred MiB of buffers for a later major GC, so RSS alone would mostly measure
 * when V8 last collected.
 */
async function readMemory(): Promise<MemoryReading> {
  const rssAsFound = residentBytes(server.pid)
  const usage = await withInspector(server.inspectorUrl, async (session) => {
    await session.collectGarbage()
    await session.collectGarbage()
    return session.memoryUsage()
  })
  return {
    rssAsFound,
    rss: residentBytes(server.pid),
    heapUsed: usage.heapUsed,
    external: usage.external,
  }
}

/** The ids the server gave the phase's items, in publish order. */
async function publishedIds(partNumbers: readonly string[]): Promise<number[]> {
  const ids = await createdIds(
    { baseUrl: server.url, token: server.adminToken },
    lastKnownId,
    partNumbers,
  )
  for (const id of ids) if (id > lastKnownId) lastKnownId = id
  return ids
}

async function runPhase(
  name: string,
  partNumbers: string[],
  publish: (epoch: number) => Promise<PublishTimes>,
): Promise<PhaseResult> {
  const resetsBefore = load.typeTotals()[typeIndex('stream.reset')] as number
  load.beginPhase('item.created', partNumbers.length)
  const meter = new CostMeter(server.pid)
  const probe = new ProbeSampler(`${server.url}/health`)
  const publishTimes = await publish(load.epoch)
  log(
    `${name}: published ${partNumbers.length} in ${ms(publishTimes.elapsed)}; waiting for deliveries`,
  )
  const complete = await load.waitUntilAllReached(options.stallMs)
  const health = await probe.stop()
  const cost = meter.stop()
  if (!complete) log(`${name}: deliveries stalled for ${options.stallMs / 1000} s; counting losses`)
  const ids = await publishedIds(partNumbers)
  const deliveries = analyseDeliveries(load.connections, typeIndex('item.created'), {
    ids,
    sentAt: publishTimes.sentAt,
  })
  return {
    publish: publishTimes,
    deliveries,
    complete,
    cost,
    completionMs: deliveries.lastDeliveryAt - (publishTimes.sentAt[0] ?? 0),
    resets: (load.typeTotals()[typeIndex('stream.reset')] as number) - resetsBefore,
    health,
  }
}

/** The most CPU other processes took in any phase, in % of one core. */
let mostOtherCpu = 0
const cpuFigures = (cost: PhaseCost) => {
  mostOtherCpu = Math.max(mostOtherCpu, cost.cpu.other)
  return `${percent(cost.cpu.server)} / ${percent(cost.cpu.client)} / ${percent(cost.cpu.other)}`
}

const rows: string[][] = []
const row = (phase: string, figure: string, value: string) => rows.push([phase, figure, value])
let failed = false

function spreadRow(label: string, d: DeliveryReport): void {
  row(
    label,
    'fan-out spread (first → last client) p50 / p99 / max',
    `${ms(d.spread.p50)} / ${ms(d.spread.p99)} / ${ms(d.spread.max)}`,
  )
}

/** What both publishing phases report about delivery and cost; a loss fails the run. */
function checkedRows(label: string, result: PhaseResult, items: number): void {
  const d = result.deliveries
  row(label, 'deliveries (events × clients)', count(d.delivered))
  row(label, 'lost / duplicated / out of order', `${d.lost} / ${d.duplicated} / ${d.outOfOrder}`)
  if (d.unexpected || result.resets)
    row(label, 'unexpected ids / stream.reset', `${d.unexpected} / ${result.resets}`)
  row(label, 'CPU % of one core: server / load client / other processes', cpuFigures(result.cost))
  row(
    label,
    'server CPU time per item (its write + fan-out to every client)',
    ms(result.cost.serverCpuMs / items),
  )
  // How long an orchestrator's liveness probe waited during the phase.
  const { latency, failures } = result.health
  row(
    label,
    'GET /health every 100 ms: round trip p50 / p99 / max (failures)',
    `${ms(latency.p50)} / ${ms(latency.p99)} / ${ms(latency.max)} (${failures})`,
  )
  if (!result.complete || d.lost || d.duplicated || d.outOfOrder || d.unexpected) failed = true
}

try {
  // Baseline: the server as started, after one request, with no client.
  await writer.getJson('/ready')
  await sleep(1000)
  const baseline = await readMemory()
  row(
    'baseline',
    'server RSS as found / after a full GC',
    `${bytes(baseline.rssAsFound)} / ${bytes(baseline.rss)}`,
  )
  row(
    'baseline',
    'V8 heap used / external (after GC)',
    `${bytes(baseline.heapUsed)} / ${bytes(baseline.external)}`,
  )
  log(`baseline RSS ${bytes(baseline.rss)} after GC (${bytes(baseline.rssAsFound)} before)`)

  // Connect.
  const opened = await load.open(options.clients, options.connectConcurrency, 1024)
  const seen = await server.waitForSseClients(options.clients)
  const failures = [...opened.failures].map(([why, n]) => `${n}× ${why}`).join(', ')
  log(`${opened.opened}/${options.clients} connected in ${ms(opened.ms)}; server sees ${seen}`)
  if (opened.opened < options.clients) {
    failed = true
    log(`connection failures: ${failures}`)
  }
  row('connect', `${count(options.clients)} SSE connections opened in`, ms(opened.ms))
  if (failures) row('connect', 'failed connections', failures)
  row('connect', 'SSE clients the server counts (/ready)', count(seen))

  // Idle: CPU over the window, then memory (the forced GC stays out of the CPU figure).
  await sleep(2000)
  const idleMeter = new CostMeter(server.pid)
  await sleep(options.idleMs)
  const idleCost = idleMeter.stop()
  const idle = await readMemory()
  const idleLabel = `idle (${count(options.clients)} clients, ${options.idleMs / 1000} s)`
  const perConnection = (a: number, b: number) => bytes((a - b) / options.clients)
  row(
    idleLabel,
    'server RSS as found / after a full GC',
    `${bytes(idle.rssAsFound)} / ${bytes(idle.rss)}`,
  )
  row(
    idleLabel,
    'V8 heap used / external (after GC)',
    `${bytes(idle.heapUsed)} / ${bytes(idle.external)}`,
  )
  row(
    idleLabel,
    'per connection over baseline: RSS / V8 heap (after GC)',
    `${perConnection(idle.rss, baseline.rss)} / ${perConnection(idle.heapUsed, baseline.heapUsed)}`,
  )
  row(idleLabel, 'CPU % of one core: server / load client / other processes', cpuFigures(idleCost))
  log(`idle: RSS ${bytes(idle.rss)} after GC, CPU ${percent(idleCost.cpu.server)}`)

  // Latency at a fixed rate.
  if (options.events > 0) {
    const partNumbers = Array.from({ length: options.events }, (_, i) => `LAT-${i + 1}`)
    const label = `rate (${count(options.events)} items at ${options.rate}/s)`
    let late = 0
    const result = await runPhase('rate', partNumbers, async (epoch) => {
      const times = await publishAtRate(writer, partNumbers, options.rate, epoch)
      late = times.late
      return times
    })
    const d = result.deliveries
    const post = distribution(result.publish.roundTrip.slice())
    row(
      label,
      'publish→receive p50 / p99 / max',
      `${ms(d.latency.p50)} / ${ms(d.latency.p99)} / ${ms(d.latency.max)}`,
    )
    row(
      label,
      'publish→receive p90 / p99.9 / mean',
      `${ms(d.latency.p90)} / ${ms(d.latency.p999)} / ${ms(d.latency.mean)}`,
    )
    row(label, 'POST /api/items round trip p50 / p99', `${ms(post.p50)} / ${ms(post.p99)}`)
    spreadRow(label, d)
    row(
      label,
      'achieved publish rate',
      `${(options.events / (result.publish.elapsed / 1000)).toFixed(1)}/s${late ? ` (${late} sends behind schedule)` : ''}`,
    )
    checkedRows(label, result, options.events)
    row(label, 'server RSS after', bytes(residentBytes(server.pid)))
    log(
      `rate: p50 ${ms(d.latency.p50)} p99 ${ms(d.latency.p99)} max ${ms(d.latency.max)}; lost ${d.lost} dup ${d.duplicated}`,
    )
  }

  // Burst.
  if (options.burst > 0) {
    const partNumbers = Array.from({ length: options.burst }, (_, i) => `BURST-${i + 1}`)
    const label = `burst (${count(options.burst)} items, ${options.writers} writers)`
    const result = await runPhase('burst', partNumbers, (epoch) =>
      publishBurst(writer, partNumbers, options.writers, epoch),
    )
    const d = result.deliveries
    row(label, 'writes/s (POST 201s)', count(options.burst / (result.publish.elapsed / 1000)))
    row(
      label,
      'all clients had every event after',
      result.complete ? ms(result.completionMs) : `incomplete (${ms(result.completionMs)})`,
    )
    row(
      label,
      'deliveries/s (events × clients ÷ that time)',
      count(d.delivered / (result.completionMs / 1000)),
    )
    row(
      label,
      'per-client completion p50 / max',
      `${ms(d.clientDone.p50)} / ${ms(d.clientDone.max)}`,
    )
    row(
      label,
      'publish→receive p50 / p99 / max',
      `${ms(d.latency.p50)} / ${ms(d.latency.p99)} / ${ms(d.latency.max)}`,
    )
    spreadRow(label, d)
    checkedRows(label, result, options.burst)
    row(
      label,
      'server RSS after / peak (VmHWM)',
      `${bytes(residentBytes(server.pid))} / ${bytes(peakResidentBytes(server.pid))}`,
    )
    log(
      `burst: done in ${ms(result.completionMs)}, ${count(d.delivered / (result.completionMs / 1000))} deliveries/s; lost ${d.lost} dup ${d.duplicated}`,
    )
  }

  // Shutdown with every client still connected.
  await writer.close()
  const stateIndex = typeIndex('server.state')
  const statesBefore = load.typeTotals()[stateIndex] as number
  const openBefore = load.openCount
  const exit = await server.stop()
  const closeDeadline = performance.now() + 5000
  while (load.openCount > 0 && performance.now() < closeDeadline) await sleep(20)
  const finalStates = (load.typeTotals()[stateIndex] as number) - statesBefore
  const shutdownLabel = `shutdown (${count(openBefore)} clients connected)`
  row(shutdownLabel, 'SIGTERM → process exit', ms(exit.stopMs))
  row(
    shutdownLabel,
    'clients that got server.state shutting-down / were closed',
    `${count(finalStates)} / ${count(openBefore - load.openCount)}`,
  )
  row(shutdownLabel, 'exit', exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`)
  log(`shutdown: exit ${exit.code ?? exit.signal} after ${ms(exit.stopMs)}`)
} catch (err) {
  failed = true
  log(`failed: ${(err as Error).stack ?? String(err)}`)
} finally {
  load.close()
  await writer.close().catch(() => {})
  await server.stop()
}

const other = load.typeTotals()[typeIndex('other')] as number
if (other > 0) row('all', 'events of unknown type', count(other))

publishRun(ROOT, {
  title: `SSE fan-out, ${count(options.clients)} clients`,
  failed,
  command: commandLine(),
  options: `${count(options.clients)} clients, ${options.rate}/s × ${count(options.events)} items, burst of ${count(options.burst)} with ${options.writers} writers, ${options.idleMs / 1000} s idle window`,
  notes: [
    'Server: `node --inspect=127.0.0.1:0 dist/main.js`, PGlite + filesystem storage in a fresh temp folder, log level warn; the load client runs on the same cores',
    `Other load: ${mostOtherCpu < 25 ? `other processes took at most ${percent(mostOtherCpu)} of one core in any phase` : `**other processes took up to ${percent(mostOtherCpu)} of one core (of 200 %) during this run: the server's figures are skewed by it**`}`,
  ],
  headers: ['phase', 'figure', 'value'],
  rows,
  report: args['no-report'] ? undefined : (args.report as string),
})

process.exit(failed ? 1 : 0)
