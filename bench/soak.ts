/**
 * Soak with faults: silo (a child process, PGlite, s3rver as object storage) under continuous
 * creates, updates and deletes, with SSE clients that read fast, read slowly (paused sockets),
 * vanish and come back with Last-Event-ID, and join over time, while storage is stopped and
 * started. At the end every client's received ids are checked against the published events:
 * nothing lost, duplicated or out of order, and every gap announced by stream.reset.
 *
 *   npm run build --silent && npx tsx bench/soak.ts [--minutes 3 --clients 120 --seed 1]
 *
 * Prints the counts and appends a section to docs/BENCHMARKS.md; exits 1 when anything was
 * lost, duplicated or out of order.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { startS3, S3_ACCESS_KEY, S3_SECRET_KEY } from '../test/support/s3.js'
import { benchArgs, numberArg } from './lib/cli.js'
import { requireOpenFilesFor } from './lib/fdLimit.js'
import { withInspector } from './lib/inspector.js'
import { peakResidentBytes, residentBytes } from './lib/procfs.js'
import { bytes, count, publishRun } from './lib/report.js'
import { ROOT, SiloServer, stopOnSignals } from './lib/server.js'
import { ItemChurn } from './soak/itemChurn.js'
import { Random } from './soak/random.js'
import { readRetainedLog } from './soak/retainedLog.js'
import { checkSequence, PublishedIds, type SequenceReport } from './soak/sequenceCheck.js'
import { SoakClient, type Behaviour } from './soak/soakClient.js'
import { StorageOutages } from './soak/storageOutages.js'

const USAGE = `usage: npx tsx bench/soak.ts [options]   (build dist/ first: npm run build)
  --minutes M      length of the faulty phase (default 3)
  --clients N      SSE clients over the run, half at the start (default 120)
  --seed S         seed of every random choice (default 1)
  --writers W      concurrent writers (default 4)
  --rate R         writes per second over all writers (default 60)
  --report FILE    where the section is appended (default docs/BENCHMARKS.md)
  --no-report      print the summary only`

const args = benchArgs(USAGE, {
  minutes: { type: 'string', default: '3' },
  clients: { type: 'string', default: '120' },
  seed: { type: 'string', default: '1' },
  writers: { type: 'string', default: '4' },
  rate: { type: 'string', default: '60' },
})

const positive = (name: string) => numberArg(args, name)

const options = {
  runMs: positive('minutes') * 60_000,
  clients: Math.max(2, Math.floor(positive('clients'))),
  seed: Math.floor(positive('seed')),
  writers: Math.floor(positive('writers')),
  rate: positive('rate'),
}
/** Settings that make faults visible within minutes. */
const RETENTION_COUNT = 2000
const PRUNE_INTERVAL = '5s'
const HEALTH_INTERVAL = '1s'
const FAILURE_THRESHOLD = 2
const WARM_UP_MS = 10_000
const CATCH_UP_STALL_MS = 60_000
const FENCE = 'SOAK-FENCE'

const log = (message: string) => process.stderr.write(`[soak] ${message}\n`)

requireOpenFilesFor(options.clients)

function commandLine(): string {
  return `npm run build --silent && npx tsx bench/soak.ts ${process.argv.slice(2).join(' ')}`.trim()
}

const random = new Random(options.seed)
const s3 = await startS3()
const server = await SiloServer.start({
  inspect: true,
  env: {
    SILO_STORAGE_MINIO_ENDPOINT: '127.0.0.1',
    SILO_STORAGE_MINIO_PORT: String(s3.port),
    SILO_STORAGE_MINIO_ACCESS_KEY: S3_ACCESS_KEY,
    SILO_STORAGE_MINIO_SECRET_KEY: S3_SECRET_KEY,
    SILO_STORAGE_MINIO_BUCKET: 'silo',
    SILO_STORAGE_HEALTH_INTERVAL: HEALTH_INTERVAL,
    SILO_STORAGE_TIMEOUT: '1s',
    SILO_STORAGE_FAILURE_THRESHOLD: String(FAILURE_THRESHOLD),
    SILO_EVENTS_RETENTION_COUNT: String(RETENTION_COUNT),
    SILO_EVENTS_PRUNE_INTERVAL: PRUNE_INTERVAL,
  },
})
log(`silo pid ${server.pid} at ${server.url} (mode ${server.mode}); s3rver on port ${s3.port}`)
stopOnSignals(() => server.stop())

interface Ready {
  mode: string
  storage: string
  sse_clients: number
}

async function ready(): Promise<Ready> {
  const { body } = await request(`${server.url}/ready`)
  return (await body.json()) as Ready
}

async function waitFor(what: string, test: (r: Ready) => boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const r = await ready()
    if (test(r)) return r
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(r)}`)
    await sleep(200)
  }
}

interface Memory {
  rss: number
  heapUsed: number
  external: number
}

/** VmRSS and V8 heap after a forced full GC in the server (through its inspector). */
async function memoryAfterGc(): Promise<Memory> {
  const usage = await withInspector(server.inspectorUrl, async (session) => {
    await session.collectGarbage()
    await session.collectGarbage()
    return session.memoryUsage()
  })
  return { rss: residentBytes(server.pid), heapUsed: usage.heapUsed, external: usage.external }
}

function behaviourFor(index: number, r: Random): Behaviour {
  if (index === 0) return 'fast' // the watcher: always connected, always reading
  const roll = r.next()
  return roll < 0.4 ? 'fast' : roll < 0.7 ? 'slow' : 'flaky'
}

const churn = new ItemChurn(server.url, server.adminToken, {
  writers: options.writers,
  rate: options.rate,
  random: random.fork(),
})
const outages = new StorageOutages(s3, random.fork())
const clients: SoakClient[] = []
const rows: string[][] = []
const row = (figure: string, value: string) => rows.push([figure, value])
let failed = false
let peakRss = 0
let rssSampler: NodeJS.Timeout | null = null

try {
  churn.start()
  await sleep(WARM_UP_MS)
  const baseline = await memoryAfterGc()
  log(`baseline (writers running, no client): RSS ${bytes(baseline.rss)} after GC`)
  rssSampler = setInterval(() => {
    if (server.running) peakRss = Math.max(peakRss, residentBytes(server.pid))
  }, 1000)

  // Clients: half now, the rest joining at random times over the first 70 % of the run.
  const clientRandom = random.fork()
  const startedAt = Date.now()
  const joinAt = Array.from({ length: options.clients }, (_, i) =>
    i < Math.ceil(options.clients / 2) ? 0 : clientRandom.between(0, 0.7 * options.runMs),
  ).sort((a, b) => a - b)
  const joining = (async () => {
    for (const [i, at] of joinAt.entries()) {
      const wait = startedAt + at - Date.now()
      if (wait > 0) await sleep(wait)
      const r = clientRandom.fork()
      const client = new SoakClient(i, behaviourFor(i, r), server.url, server.adminToken, r)
      clients.push(client)
      client.start()
    }
  })()
  const outageCount = Math.max(2, Math.round((options.runMs / 60_000) * 1.5))
  outages.start(options.runMs, outageCount, startedAt)
  for (let elapsed = 0; elapsed < options.runMs; elapsed = Date.now() - startedAt) {
    await sleep(Math.min(15_000, options.runMs - elapsed))
    const connected = clients.filter((c) => c.connected).length
    const r = await ready()
    log(
      `${Math.round((Date.now() - startedAt) / 1000)} s: ${clients.length} clients (${connected} connected, server counts ${r.sse_clients}), mode ${r.mode}, ${churn.counts.created} created / ${churn.counts.updated} updated / ${churn.counts.deleted} deleted, RSS ${bytes(residentBytes(server.pid))}`,
    )
  }
  await joining

  // The end: writers and faults stop, storage is back, a fence item marks the newest event.
  await outages.stop()
  await churn.stop()
  await waitFor('storage back', (r) => r.mode === 'normal', 30_000)
  const fenceStatus = await churn.request('POST', '/api/items', {
    part_number: FENCE,
    item_type: 'part',
  })
  if (fenceStatus !== 201) throw new Error(`fence item: ${fenceStatus}`)
  const retained = await readRetainedLog(server.url, server.adminToken, FENCE)
  const latestId = retained.fenceId
  log(`writers stopped; latest id ${latestId}, ${retained.ids.length} retained; clients catch up`)

  // Every client resumes (vanished ones reconnect with Last-Event-ID) until it has the fence.
  await Promise.all(clients.map((c) => c.settle()))
  let lastProgress = Date.now()
  let lastCaughtUp = -1
  for (;;) {
    const caughtUp = clients.filter((c) => c.caughtUp(latestId)).length
    if (caughtUp === clients.length) break
    if (caughtUp !== lastCaughtUp) {
      lastCaughtUp = caughtUp
      lastProgress = Date.now()
    } else if (Date.now() - lastProgress > CATCH_UP_STALL_MS) {
      log(`${clients.length - caughtUp} clients did not catch up; their tails count as lost`)
      failed = true
      break
    }
    await sleep(100)
  }
  const notCaughtUp = clients.filter((c) => !c.caughtUp(latestId)).length

  // Checks against every event published (seen by anyone, or still in the log).
  const allIds: number[] = [...retained.ids]
  for (const c of clients) for (const id of c.ids) allIds.push(id)
  const published = new PublishedIds(allIds)
  const total: SequenceReport = {
    deliveries: 0,
    duplicated: 0,
    outOfOrder: 0,
    resets: 0,
    gapsExplained: 0,
    skippedByResets: 0,
    unexplainedGaps: 0,
    lost: 0,
  }
  for (const c of clients) {
    const report = checkSequence(c.ids, c.resetsAt, published, latestId)
    for (const key of Object.keys(total) as (keyof SequenceReport)[]) total[key] += report[key]
    if (report.lost || report.duplicated || report.outOfOrder) {
      log(
        `client ${c.index} (${c.behaviour}): lost ${report.lost} in ${report.unexplainedGaps} gaps, dup ${report.duplicated}, out of order ${report.outOfOrder}`,
      )
    }
  }
  if (total.lost || total.duplicated || total.outOfOrder) failed = true

  // Memory once every client is gone.
  for (const c of clients) c.close()
  await waitFor('no SSE client', (r) => r.sse_clients === 0, 30_000)
  await sleep(1000)
  const after = await memoryAfterGc()
  const hwm = peakResidentBytes(server.pid)

  const watcher = clients[0] as SoakClient
  const byBehaviour = (b: Behaviour) => clients.filter((c) => c.behaviour === b).length
  const connections = clients.reduce((n, c) => n + c.connections, 0)
  const dropped = clients.reduce((n, c) => n + c.droppedByServer, 0)
  const failures = new Map<string, number>()
  for (const c of clients)
    for (const [why, n] of c.failures) failures.set(why, (failures.get(why) ?? 0) + n)
  const modeChangesSeen = clients.reduce((n, c) => n + c.modeChanges.length, 0)
  const wrongFinalMode = clients.filter((c) => c.lastMode !== 'normal').length
  const writeFailures = [...churn.counts.failed].map(([k, n]) => `${n}× ${k}`).join(', ')
  const rssDelta = after.rss - baseline.rss

  row(
    'clients (fast / slow / flaky)',
    `${count(clients.length)} (${byBehaviour('fast')} / ${byBehaviour('slow')} / ${byBehaviour('flaky')})`,
  )
  row('connections (incl. reconnects)', count(connections))
  row('connections ended by the server or network (not by the client)', count(dropped))
  if (failures.size > 0)
    row('connections refused or failed', [...failures].map(([why, n]) => `${n}× ${why}`).join(', '))
  row(
    'writes: created / updated / deleted',
    `${count(churn.counts.created)} / ${count(churn.counts.updated)} / ${count(churn.counts.deleted)}`,
  )
  row('writes refused or failed', writeFailures || '0')
  row('events published (latest id)', count(latestId))
  row(
    'events retained at the end / ids seen by nobody (warm-up before any client)',
    `${count(retained.ids.length)} / ${count(latestId - published.count)}`,
  )
  row(
    'reference replay from Last-Event-ID 0',
    retained.resets.length === 0
      ? 'no reset (nothing pruned)'
      : retained.resets
          .map((r) => `stream.reset (oldest_available_id ${r.oldest_available_id}), then live only`)
          .join('; ') + `; replayed again from ${retained.ids[0] ?? '-'}`,
  )
  row('deliveries (ids received over all clients)', count(total.deliveries))
  row(
    'lost / duplicated / out of order',
    `${total.lost} / ${total.duplicated} / ${total.outOfOrder}`,
  )
  row('gaps without stream.reset', count(total.unexplainedGaps))
  row('stream.reset seen', count(total.resets))
  row(
    'gaps explained by stream.reset (events skipped in them)',
    `${count(total.gapsExplained)} (${count(total.skippedByResets)})`,
  )
  row('clients that did not catch up', count(notCaughtUp))
  row(
    'storage outages (s3rver stopped)',
    outages.outages
      .map((o) => `${o.seconds.toFixed(1)} s at ${o.startedAt.toFixed(0)} s`)
      .join(', '),
  )
  row(
    'mode changes seen: watcher client / all clients',
    `${watcher.modeChanges.map((m) => m.mode).join(' → ') || 'none'} / ${count(modeChangesSeen)}`,
  )
  row('clients whose last server.state was not normal at the end', count(wrongFinalMode))
  row(
    'server RSS: before clients (GC) / peak sampled (VmHWM) / after clients gone (GC)',
    `${bytes(baseline.rss)} / ${bytes(peakRss)} (${bytes(hwm)}) / ${bytes(after.rss)}`,
  )
  row(
    'V8 heap used: before / after (GC); external before / after',
    `${bytes(baseline.heapUsed)} / ${bytes(after.heapUsed)}; ${bytes(baseline.external)} / ${bytes(after.external)}`,
  )
  row(
    'RSS after vs before',
    `${rssDelta >= 0 ? '+' : ''}${bytes(rssDelta)} (${((rssDelta / baseline.rss) * 100).toFixed(1)} %)`,
  )
} catch (err) {
  failed = true
  log(`failed: ${(err as Error).stack ?? String(err)}\n${server.printed}`)
} finally {
  if (rssSampler) clearInterval(rssSampler)
  for (const c of clients) c.close()
  await churn.stop().catch(() => {})
  await churn.close().catch(() => {})
  await outages.stop().catch(() => {})
  const exit = await server.stop()
  if (exit.code !== 0)
    row('server exit', exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`)
  await s3.close()
}

publishRun(ROOT, {
  title: `Soak with faults, ${options.runMs / 60_000} min, ${count(options.clients)} clients`,
  failed,
  command: commandLine(),
  options: `${options.runMs / 60_000} min, ${count(options.clients)} clients (half at the start, the rest joining over the run), ${options.writers} writers at ${options.rate} writes/s (create / PATCH / DELETE), seed ${options.seed}`,
  notes: [
    `Server: \`node --inspect=127.0.0.1:0 dist/main.js\`, PGlite in a fresh temp folder, s3rver as \`storage.minio\` (health every ${HEALTH_INTERVAL}, failure threshold ${FAILURE_THRESHOLD}), events retention ${count(RETENTION_COUNT)} pruned every ${PRUNE_INTERVAL}; memory before clients is read after a ${WARM_UP_MS / 1000} s writer warm-up`,
  ],
  headers: ['figure', 'value'],
  rows,
  report: args['no-report'] ? undefined : (args.report as string),
  suffix: `; seed ${options.seed}`,
})

process.exit(failed ? 1 : 0)
