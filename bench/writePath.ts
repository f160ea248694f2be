/**
 * Write-path benchmark: what the event stream costs the writers. One silo server (a child
 * process on a fresh data folder) takes bursts of item creates (POST /api/items) from several
 * writers, first with no SSE subscriber, then with N subscribers connected, then with none
 * again (so a slower database as the table grows is not mistaken for the stream's cost).
 *
 *   npm run build --silent && npx tsx bench/writePath.ts [--items 2000 --writers 4 --clients 1000]
 *   npm run build --silent && npx tsx bench/writePath.ts --writers 8 --clients 0 \
 *     --database-url postgres://silo@127.0.0.1:55440/postgres
 *
 * The writers run on a thread of their own (bench/lib/writerThread.ts): on the loop that reads
 * 1,000 subscribers' streams they would wait for those reads before each next request. Prints
 * creates/s, round trips and server CPU per create for each phase, checks that every
 * subscriber got every event, and appends a section to docs/BENCHMARKS.md.
 */
import { loadavg } from 'node:os'
import { resolve } from 'node:path'
import { analyseDeliveries, distribution } from './lib/deliveries.js'
import { benchArgs, numberArg } from './lib/cli.js'
import { CostMeter, type PhaseCost } from './lib/cost.js'
import { requireOpenFilesFor } from './lib/fdLimit.js'
import { ItemWriter, publishBurst, WriterThread, type PublishTimes } from './lib/itemWriter.js'
import { count, ms, percent, publishRun } from './lib/report.js'
import { ROOT, SiloServer, stopOnSignals } from './lib/server.js'
import { measureWriteFloor } from './lib/writeFloor.js'
import { createdIds, SseLoad, typeIndex } from './lib/sseLoad.js'

const USAGE = `usage: npm run build --silent && npx tsx bench/writePath.ts [options]
  --items N          items created in each measured phase (default 2000)
  --warmup N         items created before measuring, not reported (default 1000)
  --writers W        concurrent writers (default 4)
  --clients C        SSE subscribers in the middle phase (default 1000; 0: no middle phase)
  --database-url U   run silo on PostgreSQL: a fresh database made on U's server for each
                     run (and one for the floor), dropped at the end; PGlite by default
  --main FILE        the server's entry point, e.g. an older build's dist/main.js (a before)
  --cpu-prof DIR     write the server's CPU profile (node --cpu-prof) into DIR at its exit
  --no-floor         skip the floor: the database alone, in this process, doing what one
                     create needs (bench/lib/writeFloor.ts)
  --shared-loop      run the writers on the load client's own event loop, beside the
                     subscribers, instead of on a thread of their own (how this bench ran
                     before 2026-12-01 evening: the writers then wait for the subscribers' reads)
  --stall S          give up waiting for deliveries after S seconds without progress (default 15)
  --report FILE      where the section is appended (default docs/BENCHMARKS.md)
  --no-report        print the summary only`

const args = benchArgs(USAGE, {
  items: { type: 'string', default: '2000' },
  warmup: { type: 'string', default: '1000' },
  writers: { type: 'string', default: '4' },
  clients: { type: 'string', default: '1000' },
  stall: { type: 'string', default: '15' },
  'database-url': { type: 'string' },
  main: { type: 'string' },
  'cpu-prof': { type: 'string' },
  'no-floor': { type: 'boolean', default: false },
  'shared-loop': { type: 'boolean', default: false },
})

const options = {
  items: numberArg(args, 'items', 'integer'),
  warmup: numberArg(args, 'warmup', 'integer'),
  writers: numberArg(args, 'writers', 'integer'),
  clients: Math.floor(numberArg(args, 'clients', 'non-negative')),
  stallMs: numberArg(args, 'stall', 'positive') * 1000,
}

const log = (message: string) => process.stderr.write(`[writePath] ${message}\n`)

requireOpenFilesFor(options.clients)

const databaseUrl = args['database-url'] as string | undefined
/** A fresh database on the server `databaseUrl` names, so silo starts as on a first start. */
async function freshDatabase(tag: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const { default: pg } = await import('pg')
  const name = `silo_bench_${tag}_${process.pid}_${Date.now()}`
  const admin = new pg.Client({ connectionString: databaseUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(databaseUrl as string)
  url.pathname = `/${name}`
  return {
    url: url.href,
    async drop() {
      const again = new pg.Client({ connectionString: databaseUrl })
      await again.connect()
      await again.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await again.end()
    },
  }
}
const serverDb = databaseUrl ? await freshDatabase('server') : null
const server = await SiloServer.start({
  env: serverDb ? { SILO_DATABASE_URL: serverDb.url } : {},
  ...(args.main ? { mainJs: resolve(args.main as string) } : {}),
  ...(args['cpu-prof']
    ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', resolve(args['cpu-prof'] as string)] }
    : {}),
})
log(`silo pid ${server.pid} at ${server.url}`)
stopOnSignals(() => server.stop())

const sharedLoop = args['shared-loop'] as boolean
const writer = sharedLoop
  ? new ItemWriter(server.url, server.adminToken, options.writers)
  : new WriterThread(server.url, server.adminToken, options.writers)
const load = new SseLoad({ baseUrl: server.url, token: server.adminToken })
let batch = 0

interface WritePhase {
  partNumbers: string[]
  publish: PublishTimes
  cost: PhaseCost
}

/** Creates `n` new items with every writer busy; the clock runs from first send to last 201. */
async function createBurst(n: number): Promise<WritePhase> {
  batch++
  const partNumbers = Array.from({ length: n }, (_, i) => `W${batch}-${i + 1}`)
  const meter = new CostMeter(server.pid)
  const publish =
    writer instanceof WriterThread
      ? await writer.burst(partNumbers, options.writers, load.epoch)
      : await publishBurst(writer, partNumbers, options.writers, load.epoch)
  return { partNumbers, publish, cost: meter.stop() }
}

const rows: string[][] = []
const creates: number[] = []
let failed = false

function report(label: string, phase: WritePhase): void {
  const { publish, cost } = phase
  const perSecond = options.items / (publish.elapsed / 1000)
  const trip = distribution(publish.roundTrip.slice())
  creates.push(perSecond)
  rows.push(
    [label, 'creates/s (POST 201s)', count(perSecond)],
    [
      label,
      'POST round trip p50 / p99 / max',
      `${ms(trip.p50)} / ${ms(trip.p99)} / ${ms(trip.max)}`,
    ],
    [label, 'server CPU per create', ms(cost.serverCpuMs / options.items)],
    [
      label,
      'CPU % of one core: server / load client / other processes',
      `${percent(cost.cpu.server)} / ${percent(cost.cpu.client)} / ${percent(cost.cpu.other)}`,
    ],
  )
  log(`${label}: ${count(perSecond)} creates/s, p50 ${ms(trip.p50)}, p99 ${ms(trip.p99)}`)
}

try {
  if (options.warmup > 0) await createBurst(options.warmup)

  report('no subscriber', await createBurst(options.items))

  if (options.clients > 0) {
    const opened = await load.open(options.clients, 100, options.items + 64)
    const seen = await server.waitForSseClients(options.clients)
    log(`${opened.opened}/${options.clients} subscribers connected; server counts ${seen}`)
    if (opened.opened < options.clients) failed = true
    const subscribed = `${count(options.clients)} subscribers`
    load.beginPhase('item.created', options.items)
    const withClients = await createBurst(options.items)
    report(subscribed, withClients)
    const complete = await load.waitUntilAllReached(options.stallMs)
    const ids = await createdIds(
      { baseUrl: server.url, token: server.adminToken },
      0,
      withClients.partNumbers,
    )
    const d = analyseDeliveries(load.connections, typeIndex('item.created'), {
      ids,
      sentAt: withClients.publish.sentAt,
    })
    rows.push(
      [subscribed, 'deliveries (events × subscribers)', count(d.delivered)],
      [
        subscribed,
        'lost / duplicated / out of order',
        `${d.lost} / ${d.duplicated} / ${d.outOfOrder}`,
      ],
      [
        subscribed,
        'publish→receive p50 / p99 / max',
        `${ms(d.latency.p50)} / ${ms(d.latency.p99)} / ${ms(d.latency.max)}`,
      ],
    )
    if (!complete || d.lost || d.duplicated || d.outOfOrder || d.unexpected) failed = true
    load.close()
    await server.waitForSseClients(0)
  }

  report('no subscriber, again', await createBurst(options.items))
  if (options.clients > 0) {
    const [before, during, after] = creates as [number, number, number]
    rows.push([
      'cost of the stream',
      `creates/s with ${count(options.clients)} subscribers ÷ mean of the runs without`,
      `${(during / ((before + after) / 2)).toFixed(2)}×`,
    ])
  }
  if (!args['no-floor']) {
    const floorDb = databaseUrl ? await freshDatabase('floor') : null
    try {
      const floor = await measureWriteFloor(ROOT, {
        items: options.items,
        writers: options.writers,
        databaseUrl: floorDb?.url,
      })
      const where = databaseUrl ? 'bare pg' : 'bare PGlite'
      rows.push(
        [
          'floor',
          `${where}: item + event, BEGIN … COMMIT, one statement each (per s)`,
          count(floor.transactionPerSecond),
        ],
        [
          'floor',
          `${where}: item + event in one statement (per s)`,
          count(floor.statementPerSecond),
        ],
      )
      log(
        `floor: ${count(floor.transactionPerSecond)}/s in a transaction, ${count(floor.statementPerSecond)}/s as one statement`,
      )
    } finally {
      await floorDb?.drop()
    }
  }
} catch (err) {
  failed = true
  log(`failed: ${(err as Error).stack ?? String(err)}`)
} finally {
  load.close()
  await writer.close().catch(() => {})
  await server.stop()
  await serverDb?.drop()
}

publishRun(ROOT, {
  title:
    options.clients > 0
      ? `write path, ${count(options.items)} creates × 3 phases, ${count(options.clients)} subscribers in the middle one`
      : `write path, ${count(options.items)} creates × 2 phases, no subscriber, ${options.writers} writers`,
  failed,
  command:
    `npm run build --silent && npx tsx bench/writePath.ts ${process.argv.slice(2).join(' ')}`.trim(),
  options: `${count(options.items)} items per phase after ${count(options.warmup)} warm-up creates, ${options.writers} concurrent writers, ${count(options.clients)} SSE subscribers in the middle phase`,
  notes: [
    `Server: \`node ${args.main ?? 'dist/main.js'}\`, ${databaseUrl ? 'PostgreSQL (a fresh database)' : 'PGlite'} + filesystem storage in a fresh temp folder, log level warn; writers and subscribers run in the load client on the same cores, the writers ${sharedLoop ? 'on the same event loop as the subscribers' : 'on a thread of their own'}`,
    `Load average at the end (1 / 5 / 15 min): ${loadavg()
      .map((n) => n.toFixed(2))
      .join(' / ')}`,
  ],
  headers: ['phase', 'figure', 'value'],
  rows,
  report: args['no-report'] ? undefined : (args.report as string),
})

process.exit(failed ? 1 : 0)
