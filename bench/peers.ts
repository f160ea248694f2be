/**
 * silo next to the SSE servers people would pick instead, with the same load client and the
 * same payloads: nginx + nchan (EventSource pub/sub) and a plain Fastify server with
 * better-sse (bench/peers/betterSse.ts). Each runs alone as its own process, one after
 * another; the load client (bench/lib/sseLoad.ts) and publish schedule (bench/lib/itemWriter.ts)
 * are bench/fanout.ts's.
 *
 *   npm run build --silent && npx tsx bench/peers.ts [--clients 1000 --rate 50 --events 500
 *     --burst 2000 --writers 4 --idle 10 --servers silo,nchan,better-sse]
 *
 * Prints a side-by-side table and silo's ratio to each peer, and appends a section to
 * docs/BENCHMARKS.md.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { benchArgs, numberArg } from './lib/cli.js'
import type { Distribution } from './lib/deliveries.js'
import { requireOpenFilesFor } from './lib/fdLimit.js'
import {
  appendSection,
  bytes,
  count,
  markdownTable,
  ms,
  percent,
  runContext,
  textTable,
} from './lib/report.js'
import { ROOT, stopOnSignals } from './lib/server.js'
import {
  loadAverage,
  measureServer,
  waitForQuietMachine,
  type PeerOptions,
  type PhaseFigures,
  type ServerFigures,
} from './peers/measure.js'
import {
  nginxVersions,
  SERVER_NAMES,
  startBetterSse,
  startNchan,
  startSilo,
  type BenchServer,
  type ServerName,
} from './peers/servers.js'

const USAGE = `usage: npx tsx bench/peers.ts [options]   (npm run build first: silo runs from dist/)
  --clients N        SSE connections per server (default 1000)
  --rate R           publishes per second in the latency phase (default 50)
  --events M         publishes in the latency phase (default 500)
  --burst B          publishes as fast as possible in the burst phase (default 2000)
  --writers W        concurrent publishers in the burst phase (default 4)
  --idle S           seconds of the idle window (default 10)
  --servers LIST     which servers, in order (default silo,nchan,better-sse)
  --load-below L     wait for the 1-minute load average to fall below L (default 1.5)
  --load-wait S      ...for at most S seconds before each server (default 120)
  --report FILE      where the section is appended (default docs/BENCHMARKS.md)
  --no-report        print only`

const args = benchArgs(USAGE, {
  clients: { type: 'string', default: '1000' },
  rate: { type: 'string', default: '50' },
  events: { type: 'string', default: '500' },
  burst: { type: 'string', default: '2000' },
  writers: { type: 'string', default: '4' },
  idle: { type: 'string', default: '10' },
  servers: { type: 'string', default: SERVER_NAMES.join(',') },
  'load-below': { type: 'string', default: '1.5' },
  'load-wait': { type: 'string', default: '120' },
  stall: { type: 'string', default: '15' },
})

const number = (name: string) => numberArg(args, name, 'non-negative')

const options: PeerOptions = {
  clients: Math.max(1, Math.floor(number('clients'))),
  rate: Math.max(0.1, number('rate')),
  events: Math.floor(number('events')),
  burst: Math.floor(number('burst')),
  writers: Math.max(1, Math.floor(number('writers'))),
  idleMs: number('idle') * 1000,
  connectConcurrency: 100,
  stallMs: Math.max(1, number('stall')) * 1000,
}
const servers = (args.servers as string).split(',').map((s) => s.trim()) as ServerName[]
for (const name of servers) {
  if (!SERVER_NAMES.includes(name)) {
    process.stderr.write(`unknown server ${name}; known: ${SERVER_NAMES.join(', ')}\n`)
    process.exit(2)
  }
}

const log = (message: string) => process.stderr.write(`[peers] ${message}\n`)

requireOpenFilesFor(options.clients)

function packageVersion(name: string): string {
  const json = readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')
  return (JSON.parse(json) as { version: string }).version
}

/** Without silo first, peers get a payload shaped like silo's item.created data. */
let silosPayloads = new Map<string, string>()
const payloadFor = (partNumber: string) =>
  silosPayloads.get(partNumber) ??
  JSON.stringify({
    part_number: partNumber,
    description: 'fan-out benchmark item',
    item_type: 'part',
    properties: {},
  })

const starters: Record<ServerName, () => Promise<BenchServer>> = {
  silo: startSilo,
  nchan: () => startNchan(options.clients + 64),
  'better-sse': startBetterSse,
}

const results: ServerFigures[] = []
const descriptions: string[] = []
let running: BenchServer | null = null
stopOnSignals(() => running?.stop())

let failed = false
for (const name of servers) {
  log(`${name}: load average ${loadAverage()}; waiting for it to fall below ${args['load-below']}`)
  const loadBefore = await waitForQuietMachine(number('load-below'), number('load-wait') * 1000)
  log(`${name}: starting (load ${loadBefore})`)
  try {
    running = await starters[name]()
    descriptions.push(`- ${name}: ${running.description}`)
    const figures = await measureServer(running, options, loadBefore, payloadFor, (p) => {
      silosPayloads = p
    })
    if (figures.failed) failed = true
    results.push(figures)
  } catch (err) {
    failed = true
    log(`${name} failed: ${(err as Error).stack ?? String(err)}`)
  } finally {
    await running?.stop().catch(() => {})
    running = null
  }
}

// The table: one column per server.
const perConnection = (r: ServerFigures) => (r.idleRss - r.baselineRss) / Math.max(1, r.connected)
const cpu = (c: { server: number; client: number; other: number }) =>
  `${percent(c.server)} / ${percent(c.client)} / ${percent(c.other)}`
const triple = (a: number, b: number, c: number) => `${ms(a)} / ${ms(b)} / ${ms(c)}`

type FigureRow = [string, (r: ServerFigures) => string]

/** The rows the rate and burst phases both have; '-' where a server has no such phase. */
function phaseRows(phase: 'rate' | 'burst', items: number): FigureRow[] {
  const of =
    (value: (p: PhaseFigures) => string) =>
    (r: ServerFigures): string => {
      const figures = r[phase]
      return figures ? value(figures) : '-'
    }
  const p50p99max = (d: Distribution) => triple(d.p50, d.p99, d.max)
  return [
    [`${phase}: publish→receive p50 / p99 / max`, of((p) => p50p99max(p.deliveries.latency))],
    [`${phase}: fan-out spread p50 / p99 / max`, of((p) => p50p99max(p.deliveries.spread))],
    [
      `${phase}: publish round trip p50 / p99${phase === 'rate' ? ' (silo: DB write)' : ''}`,
      of((p) => `${ms(p.roundTrip.p50)} / ${ms(p.roundTrip.p99)}`),
    ],
    [`${phase}: server CPU per event`, of((p) => ms(p.serverCpuMs / items))],
    [`${phase}: CPU % server / load client / other`, of((p) => cpu(p.cpu))],
    [
      `${phase}: lost / duplicated / out of order`,
      of((p) => `${p.deliveries.lost} / ${p.deliveries.duplicated} / ${p.deliveries.outOfOrder}`),
    ],
  ]
}
const figureRows: FigureRow[] = [
  ['1-min load average before the run', (r) => r.loadBefore],
  ['event payload (data: bytes)', (r) => `${r.payloadBytes} B`],
  ['baseline RSS (after GC for node)', (r) => bytes(r.baselineRss)],
  [
    `clients connected / server counts (+1 reference)`,
    (r) => `${count(r.connected)} / ${count(r.serverCounts)}`,
  ],
  ['connect time', (r) => ms(r.connectMs)],
  [
    'idle: RSS (after GC for node) / as found',
    (r) => `${bytes(r.idleRss)} / ${bytes(r.idleRssAsFound)}`,
  ],
  ['idle: RSS per connection over baseline', (r) => bytes(perConnection(r))],
  ['idle: CPU % server / load client / other', (r) => cpu(r.idleCpu)],
  ...phaseRows('rate', options.events),
  [
    'burst: publishes/s',
    (r) => (r.burst ? count(options.burst / (r.burst.publishMs / 1000)) : '-'),
  ],
  [
    'burst: all clients had all events after',
    (r) =>
      r.burst ? `${ms(r.burst.completionMs)}${r.burst.complete ? '' : ' (incomplete)'}` : '-',
  ],
  [
    'burst: deliveries/s',
    (r) => (r.burst ? count(r.burst.deliveries.delivered / (r.burst.completionMs / 1000)) : '-'),
  ],
  ...phaseRows('burst', options.burst),
]
const header = ['figure', ...results.map((r) => r.name)]
const rows = figureRows.map(([label, value]) => [label, ...results.map(value)])

// silo's ratio to each peer: > 1 means silo takes longer / uses more, or delivers more per second.
const silo = results.find((r) => r.name === 'silo')
const ratio = (a: number, b: number) =>
  b > 0 && Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : '-'
const ratioRows: string[][] = []
if (silo) {
  const peers = results.filter((r) => r.name !== 'silo')
  const add = (label: string, f: (r: ServerFigures) => number | undefined) =>
    ratioRows.push([label, ...peers.map((p) => ratio(f(silo) ?? NaN, f(p) ?? NaN))])
  add('rate latency p50 (silo ÷ peer)', (r) => r.rate?.deliveries.latency.p50)
  add('rate latency p99', (r) => r.rate?.deliveries.latency.p99)
  add('rate latency p50 minus publish round trip', (r) =>
    r.rate ? r.rate.deliveries.latency.p50 - r.rate.roundTrip.p50 : undefined,
  )
  add('rate fan-out spread p50', (r) => r.rate?.deliveries.spread.p50)
  add('rate fan-out spread p99', (r) => r.rate?.deliveries.spread.p99)
  add('burst deliveries/s', (r) =>
    r.burst ? r.burst.deliveries.delivered / (r.burst.completionMs / 1000) : undefined,
  )
  add('burst time until all had all', (r) => r.burst?.completionMs)
  add('burst fan-out spread p50', (r) => r.burst?.deliveries.spread.p50)
  add('server CPU per event (burst)', (r) =>
    r.burst ? r.burst.serverCpuMs / options.burst : undefined,
  )
  add('idle RSS per connection', perConnection)
  add('idle RSS total', (r) => r.idleRss)
  ratioRows.unshift(['silo ÷', ...peers.map((p) => p.name)])
}

const context = runContext(ROOT)
const versions = nginxVersions()
const versionLine = `node ${context.node}; ${versions.nginx}, libnginx-mod-nchan ${versions.nchan}; better-sse ${packageVersion('better-sse')}, fastify ${packageVersion('fastify')}; silo ${context.commit}`
process.stdout.write(`\n${textTable([header, ...rows])}\n\n`)
if (ratioRows.length > 0) process.stdout.write(`${textTable(ratioRows)}\n\n`)
process.stdout.write(
  `${context.cpuModel}, ${context.cores} cores, ${context.memory}; ${versionLine}\n`,
)

const given = process.argv.slice(2)
const command = `npm run build --silent && npx tsx bench/peers.ts ${given.join(' ')}`.trim()
if (!args['no-report'] && results.length > 0) {
  const section = `## ${context.date} — SSE peers side by side, ${count(options.clients)} clients${failed ? ' (run had failures)' : ''}

- Command: \`${command}\`
- Options: ${count(options.clients)} clients, ${options.rate}/s × ${count(options.events)} events, burst of ${count(options.burst)} with ${options.writers} publishers, ${options.idleMs / 1000} s idle window; servers run one after another, each alone, as its own process
- Machine: ${context.cpuModel}, ${context.cores} cores, ${context.memory} RAM, ${context.kernel}; shared with other sessions (see the load average row: the 1-minute load was waited on, up to ${args['load-wait']} s, to fall below ${args['load-below']} before each server)
- Versions: ${versionLine}
${descriptions.join('\n')}
- Same load client for all (bench/lib/sseLoad.ts, raw sockets) plus one reference connection per server that reads each event's data: events are matched to publishes by the part number inside the payload (nchan's ids are \`<time>:<tag>\`), and every client's ids are checked against the order the reference saw. The peers publish the exact \`data:\` bytes silo sent for the same part number.
- **silo's publish is a database write (PGlite insert + event log) before the fan-out; the peers' is not.** Compare "fan-out spread" (first → last client per event) for the broadcast alone, and "publish round trip" for silo's write path.

${markdownTable(header, rows)}
${ratioRows.length > 0 ? `\nsilo's ratio to each peer (latency and time: > 1 means silo is slower; deliveries/s: < 1 means silo is slower; RSS: > 1 means silo uses more):\n\n${markdownTable(ratioRows[0] as string[], ratioRows.slice(1))}\n` : ''}`
  appendSection(args.report as string, section)
  log(`appended to ${args.report}`)
}

process.exit(failed ? 1 : 0)
