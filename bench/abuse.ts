/**
 * Hostile clients against a live server: each attack runs on a fresh silo (a child process on a
 * fresh data folder) with 100 SSE subscribers connected and a writer creating 5 items/s, while a
 * separate client probes GET /health. Per attack it records the probe's latency, the writer's
 * publish→receive latency at the subscribers, the server's RSS peak and CPU, and the attack's
 * own answer and time.
 *
 *   npm run build --silent && npx tsx bench/abuse.ts [--only csv-empty-1m,streams] [--no-report]
 *
 * Targets (README, "Bad input"): /health p99 ≤ 50 ms and event latency p99 ≤ 100 ms during every
 * attack; each bad file refused in under 2 s; RSS peak ≤ idle + 300 MB.
 */
import { loadavg } from 'node:os'
import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { strToU8, Zip, ZipDeflate, ZipPassThrough } from 'fflate'
import { Pool } from 'undici'
import { analyseDeliveries } from './lib/deliveries.js'
import { benchArgs, numberArg } from './lib/cli.js'
import { CostMeter } from './lib/cost.js'
import { requireOpenFilesFor } from './lib/fdLimit.js'
import { ItemWriter } from './lib/itemWriter.js'
import { ProbeSampler } from './lib/probe.js'
import { residentBytes } from './lib/procfs.js'
import { bytes, count, ms, percent, publishRun } from './lib/report.js'
import { ROOT, SiloServer, stopOnSignals } from './lib/server.js'
import { createdIds, SseLoad, typeIndex } from './lib/sseLoad.js'

const USAGE = `usage: npm run build --silent && npx tsx bench/abuse.ts [options]
  --only A,B           run only these attacks (names below)
  --subscribers N      live SSE subscribers during each attack (default 100)
  --rate R             writer's creates per second (default 5)
  --timeout S          give an attack's answer up after S seconds (default 90)
  --streams N          extra streams opened on one token (default 10000)
  --slow N             connections sending headers one byte per 10 s (default 5000)
  --slow-seconds S     how long the slow connections are held (default 40)
  --cpu-prof DIR       write a V8 CPU profile of each attack's server into DIR (at its exit)
  --report FILE        where the section is appended (default docs/BENCHMARKS.md)
  --no-report          print the summary only
attacks: ${[
  'csv-empty-1m',
  'csv-empty-32m',
  'csv-valid-100k',
  'ods-bomb',
  'ods-lying-size',
  'streams',
  'slow-headers',
].join(', ')}`

const args = benchArgs(USAGE, {
  only: { type: 'string' },
  subscribers: { type: 'string', default: '100' },
  rate: { type: 'string', default: '5' },
  timeout: { type: 'string', default: '90' },
  streams: { type: 'string', default: '10000' },
  slow: { type: 'string', default: '5000' },
  'slow-seconds': { type: 'string', default: '40' },
  'cpu-prof': { type: 'string' },
})

const subscriberCount = numberArg(args, 'subscribers', 'integer')
const writeRate = numberArg(args, 'rate')
const attackTimeoutMs = numberArg(args, 'timeout') * 1000
const extraStreams = numberArg(args, 'streams', 'integer')
const slowCount = numberArg(args, 'slow', 'integer')
const slowMs = numberArg(args, 'slow-seconds') * 1000

function log(line: string): void {
  process.stderr.write(`[abuse] ${line}\n`)
}

/** What the attack itself got back, and how long it took. */
interface Answer {
  answer: string
  ms: number
}

interface AttackContext {
  server: SiloServer
  http: Pool
  auth: Record<string, string>
}

interface Attack {
  name: string
  what: string
  /**
   * Makes the attack's input before anything is measured: compressing a 250 MB bomb takes the
   * load client's thread for seconds, which would count as the server's event latency.
   */
  prepare?(): void
  run(ctx: AttackContext): Promise<Answer>
}

// ---- the inputs ----

const CSV_HEADER = 'part_number,description,item_type\n'

/** The header, then empty lines up to `size` bytes: each line a record for the parser. */
function emptyLinesCsv(size: number): Buffer {
  const body = Buffer.alloc(size, '\n')
  body.write(CSV_HEADER)
  return body
}

function validCsv(rows: number): Buffer {
  const lines = [CSV_HEADER.trimEnd()]
  for (let i = 0; i < rows; i++) lines.push(`ABU-${String(i).padStart(6, '0')},bracket ${i},part`)
  return Buffer.from(`${lines.join('\n')}\n`)
}

const ODS_MIME = 'application/vnd.oasis.opendocument.spreadsheet'
const CONTENT_HEAD =
  '<?xml version="1.0" encoding="UTF-8"?><office:document-content' +
  ' xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"' +
  ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"' +
  ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">' +
  '<office:body><office:spreadsheet><table:table table:name="S"><table:table-row>' +
  '<table:table-cell><text:p>part_number</text:p></table:table-cell></table:table-row>' +
  '<table:table-row><table:table-cell><text:p>'
const CONTENT_TAIL =
  '</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>'

/**
 * An ODS whose content.xml inflates to `inflated` bytes: one cell of repeated text, which
 * deflates about 1,000:1. The zip is written honestly (sizes as they are).
 */
function odsBomb(inflated: number): Buffer {
  const chunks: Uint8Array[] = []
  const zip = new Zip((err, data) => {
    if (err) throw err
    chunks.push(data)
  })
  const mimetype = new ZipPassThrough('mimetype')
  zip.add(mimetype)
  mimetype.push(strToU8(ODS_MIME), true)
  const content = new ZipDeflate('content.xml', { level: 9 })
  zip.add(content)
  content.push(strToU8(CONTENT_HEAD))
  const block = new Uint8Array(1 << 20).fill(0x41)
  const filler = inflated - CONTENT_HEAD.length - CONTENT_TAIL.length
  for (let left = filler; left > 0; left -= block.length) {
    content.push(left >= block.length ? block : block.subarray(0, left))
  }
  content.push(strToU8(CONTENT_TAIL), true)
  zip.end()
  return Buffer.concat(chunks)
}

/**
 * The same bomb with its headers lying: every record of content.xml's uncompressed size (the
 * central directory and the data descriptor) says 1 KiB.
 */
function lyingOdsBomb(inflated: number): Buffer {
  const zip = odsBomb(inflated)
  const claimed = 1024
  for (let at = zip.length - 46; at >= 0; at--) {
    const signature = zip.readUInt32LE(at)
    if (signature === 0x02014b50) {
      const nameLength = zip.readUInt16LE(at + 28)
      const name = zip.toString('utf8', at + 46, at + 46 + nameLength)
      if (name === 'content.xml') zip.writeUInt32LE(claimed, at + 24)
    } else if (signature === 0x08074b50 && zip.readUInt32LE(at + 12) === inflated) {
      zip.writeUInt32LE(claimed, at + 12)
    }
  }
  return zip
}

// ---- the attacks ----

async function post(ctx: AttackContext, path: string, type: string, body: Buffer): Promise<Answer> {
  const started = performance.now()
  try {
    const { statusCode, body: answer } = await ctx.http.request({
      method: 'POST',
      path,
      headers: { ...ctx.auth, 'content-type': type },
      body,
      headersTimeout: attackTimeoutMs,
      bodyTimeout: attackTimeoutMs,
    })
    const text = await answer.text()
    let code = ''
    try {
      code = String((JSON.parse(text) as { error?: unknown }).error ?? '')
    } catch {
      // not JSON
    }
    return { answer: `${statusCode}${code ? ` ${code}` : ''}`, ms: performance.now() - started }
  } catch (err) {
    const name = (err as { code?: string }).code ?? (err as Error).message
    return { answer: `no answer (${name})`, ms: performance.now() - started }
  }
}

function importAttack(
  name: string,
  what: string,
  format: 'csv' | 'ods',
  make: () => Buffer,
): Attack {
  let body: Buffer = Buffer.alloc(0)
  return {
    name,
    what,
    prepare() {
      body = make()
    },
    run(ctx: AttackContext) {
      log(`${name}: posting ${bytes(body.length)}`)
      return post(ctx, `/api/import/${format}`, format === 'csv' ? 'text/csv' : ODS_MIME, body)
    },
  }
}

/** A new viewer token, made through the admin API. */
async function viewerToken(http: Pool, auth: Record<string, string>, name: string) {
  const { statusCode, body } = await http.request({
    method: 'POST',
    path: '/api/admin/tokens',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ name, role: 'viewer' }),
  })
  const token = ((await body.json()) as { token: string }).token
  if (statusCode !== 201) throw new Error(`creating the viewer token answered ${statusCode}`)
  return token
}

/** Opens `n` more streams with one viewer token and holds them while the writer runs. */
async function manyStreams(ctx: AttackContext): Promise<Answer> {
  const token = await viewerToken(ctx.http, ctx.auth, 'many-streams')
  const streams = new SseLoad({ baseUrl: ctx.server.url, token })
  const started = performance.now()
  const opened = await streams.open(extraStreams, 200, 16)
  const took = performance.now() - started
  // Held for a few writes, so that the subscribers' latency covers the streams being open.
  await sleep(3000)
  streams.close()
  const refused = [...opened.failures].map(([reason, n]) => `${count(n)} × ${reason}`)
  return {
    answer: [`${count(opened.opened)} × 200`, ...refused].join(', '),
    ms: took,
  }
}

/** Connections that send a request head one byte every 10 s; counts those the server drops. */
async function slowHeaders(ctx: AttackContext): Promise<Answer> {
  const port = Number(new URL(ctx.server.url).port)
  const head = Buffer.from('GET /health HTTP/1.1\r\nHost: silo\r\nX-Slow: ' + 'a'.repeat(4096))
  const sockets: Socket[] = []
  let dropped = 0
  let firstDropAt = 0
  const started = performance.now()
  for (let i = 0; i < slowCount; i++) {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    socket.on('close', () => {
      dropped++
      firstDropAt ||= performance.now() - started
    })
    sockets.push(socket)
    if (i % 200 === 199) await sleep(10)
  }
  let sent = 0
  const drip = () => {
    for (const socket of sockets) if (!socket.destroyed) socket.write(head.subarray(sent, sent + 1))
    sent++
  }
  drip()
  const timer = setInterval(drip, 10_000)
  await sleep(slowMs)
  clearInterval(timer)
  const stillOpen = slowCount - dropped
  for (const socket of sockets) socket.destroy()
  return {
    answer:
      `${count(dropped)} dropped by the server` +
      (dropped > 0 ? ` (first after ${ms(firstDropAt)})` : '') +
      `, ${count(stillOpen)} still open after ${ms(slowMs)}`,
    ms: performance.now() - started,
  }
}

const ATTACKS: Attack[] = [
  importAttack('csv-empty-1m', 'CSV: header + 1 MiB of empty lines', 'csv', () =>
    emptyLinesCsv(1 << 20),
  ),
  importAttack('csv-empty-32m', 'CSV: header + 32 MiB of empty lines', 'csv', () =>
    emptyLinesCsv(32 * (1 << 20) - 64),
  ),
  importAttack('csv-valid-100k', 'CSV: 100,000 valid rows (succeeds)', 'csv', () =>
    validCsv(100_000),
  ),
  importAttack('ods-bomb', 'ODS: content.xml inflates to 250 MB', 'ods', () =>
    odsBomb(250_000_000),
  ),
  importAttack('ods-lying-size', 'ODS: 250 MB content.xml, headers claim 1 KiB', 'ods', () =>
    lyingOdsBomb(250_000_000),
  ),
  { name: 'streams', what: `${count(extraStreams)} extra streams on one token`, run: manyStreams },
  {
    name: 'slow-headers',
    what: `${count(slowCount)} connections sending headers 1 byte / 10 s`,
    run: slowHeaders,
  },
]

// ---- one attack on a fresh server ----

/** Samples the server's RSS, for its peak during an attack (VmHWM would include start-up). */
class RssSampler {
  peak = 0
  private readonly timer: NodeJS.Timeout
  constructor(pid: number) {
    const sample = () => {
      try {
        this.peak = Math.max(this.peak, residentBytes(pid))
      } catch {
        // the process has gone
      }
    }
    sample()
    this.timer = setInterval(sample, 50)
  }
  stop(): number {
    clearInterval(this.timer)
    return this.peak
  }
}

/** Creates items at `rate` per second until stopped; a failed create is counted, not thrown. */
function writeUntilStopped(writer: ItemWriter, prefix: string, epoch: () => number) {
  const partNumbers: string[] = []
  const sentAt: number[] = []
  let failures = 0
  let stopped = false
  const running = (async () => {
    const start = performance.now()
    for (let i = 0; !stopped; i++) {
      const wait = start + (i * 1000) / writeRate - performance.now()
      if (wait > 1) await sleep(wait)
      if (stopped) break
      const pn = `${prefix}-${i}`
      const sent = epoch()
      try {
        await writer.create(pn)
        partNumbers.push(pn)
        sentAt.push(sent)
      } catch {
        failures++
      }
    }
  })()
  return {
    async stop() {
      stopped = true
      // A create held up by a stuck server is left behind, not waited for.
      await Promise.race([running, sleep(2000)])
      return { partNumbers, sentAt: Float64Array.from(sentAt), failures }
    },
  }
}

/** Waits until every subscriber has an event with id ≥ `id`, or nothing moved for `stallMs`. */
async function allReached(load: SseLoad, id: number, stallMs: number): Promise<boolean> {
  let lastTotal = -1
  let lastMove = performance.now()
  for (;;) {
    let behind = 0
    let total = 0
    for (const c of load.connections) {
      total += c.count
      if (!c.closed && (c.count === 0 || (c.ids[c.count - 1] as number) < id)) behind++
    }
    if (behind === 0) return true
    if (total !== lastTotal) {
      lastTotal = total
      lastMove = performance.now()
    } else if (performance.now() - lastMove > stallMs) return false
    await sleep(50)
  }
}

function withTimeout(run: Promise<Answer>, started: number): Promise<Answer> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<Answer>((resolve) => {
    timer = setTimeout(
      () => resolve({ answer: 'no answer', ms: performance.now() - started }),
      attackTimeoutMs,
    )
  })
  return Promise.race([run, timeout]).finally(() => clearTimeout(timer))
}

async function runAttack(attack: Attack): Promise<string[]> {
  // The server's own stream caps, as an operator runs it.
  const profileDir = args['cpu-prof']
  const server = await SiloServer.start({
    env: { SILO_EVENTS_MAX_STREAMS_PER_TOKEN: '100' },
    nodeArgs: profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [],
  })
  const stopServer = () => server.stop(5000)
  stopOnSignals(stopServer)
  const http = new Pool(server.url, { connections: 2 })
  const auth = { authorization: `Bearer ${server.adminToken}` }
  // The subscribers hold a token of their own: with 100 of them it is at its cap, and the
  // reference reader (createdIds) and the attacks use others.
  const load = new SseLoad({
    baseUrl: server.url,
    token: await viewerToken(http, auth, 'subscribers'),
  })
  const writer = new ItemWriter(server.url, server.adminToken, 2)
  try {
    attack.prepare?.()
    const opened = await load.open(subscriberCount, 100, 4096)
    if (opened.opened < subscriberCount) throw new Error(`only ${opened.opened} subscribers`)
    await server.waitForSseClients(subscriberCount)
    const idle = residentBytes(server.pid)
    // The target only sizes the records (they grow); nothing waits for it to be reached.
    load.beginPhase('item.created', 1024)
    const meter = new CostMeter(server.pid)
    const rss = new RssSampler(server.pid)
    const probe = new ProbeSampler(`${server.url}/health`, 50)
    const writing = writeUntilStopped(writer, `W-${attack.name}`, () => load.now())
    // A second of writes first: the latency figures then cover the attack's start.
    await sleep(1000)
    const started = performance.now()
    const answer = await withTimeout(attack.run({ server, http, auth }), started)
    await sleep(1000)
    const written = await writing.stop()
    const health = await probe.stop()
    const peak = rss.stop()
    if (!server.running) {
      const exit = await server.stop()
      return [
        attack.what,
        `${answer.answer}; the server died (${exit.signal ?? `exit ${exit.code}`})`,
        ms(answer.ms),
        `${ms(health.latency.p50)} / ${ms(health.latency.p99)} / ${ms(Math.max(health.latency.max || 0, health.unansweredMs))}`,
        'n/a (server died)',
        `${bytes(idle)} → ${bytes(peak)} (+${bytes(peak - idle)})`,
        'n/a',
      ]
    }
    const cost = meter.stop()
    const answered = !answer.answer.startsWith('no answer')
    let latency = 'n/a (server stuck)'
    if (answered && written.partNumbers.length > 0) {
      const ids = await createdIds(
        { baseUrl: server.url, token: server.adminToken },
        0,
        written.partNumbers,
      )
      const complete = await allReached(load, Math.max(...ids), 30_000)
      const d = analyseDeliveries(load.connections, typeIndex('item.created'), {
        ids,
        sentAt: written.sentAt,
      })
      latency =
        `${ms(d.latency.p50)} / ${ms(d.latency.p99)}` +
        (d.lost > 0 || !complete ? ` (${count(d.lost)} not delivered)` : '')
    }
    const healthMax = Math.max(health.latency.max || 0, health.unansweredMs)
    log(`${attack.name}: ${answer.answer} after ${ms(answer.ms)}; /health max ${ms(healthMax)}`)
    return [
      attack.what,
      answer.answer,
      ms(answer.ms),
      `${ms(health.latency.p50)} / ${ms(health.latency.p99)} / ${ms(healthMax)}` +
        (health.unansweredMs > 0 ? ' (unanswered)' : '') +
        (health.failures > 0 ? `, ${health.failures} failed` : ''),
      latency + (written.failures > 0 ? `, ${written.failures} writes failed` : ''),
      `${bytes(idle)} → ${bytes(peak)} (+${bytes(peak - idle)})`,
      percent(cost.cpu.server),
    ]
  } finally {
    load.close()
    // Stopped first: requests still waiting on a server whose event loop is held would keep a
    // graceful close of their pools waiting with them.
    await stopServer()
    await writer.close().catch(() => {})
    await http.destroy().catch(() => {})
  }
}

// ---- the run ----

const only = args.only?.split(',').map((s) => s.trim())
const chosen = only ? ATTACKS.filter((a) => only.includes(a.name)) : ATTACKS
if (only && chosen.length !== only.length) {
  process.stderr.write(`unknown attack in --only; ${USAGE.slice(USAGE.indexOf('attacks:'))}\n`)
  process.exit(2)
}
if (chosen.some((a) => a.name === 'streams')) requireOpenFilesFor(extraStreams + subscriberCount)
if (chosen.some((a) => a.name === 'slow-headers')) requireOpenFilesFor(slowCount + subscriberCount)

const loadAtStart = loadavg()[0] as number
const rows: string[][] = []
let failed = false
for (const attack of chosen) {
  try {
    rows.push(await runAttack(attack))
  } catch (err) {
    failed = true
    log(`${attack.name} failed: ${(err as Error).stack ?? String(err)}`)
    rows.push([attack.what, `harness error: ${(err as Error).message}`, '', '', '', '', ''])
  }
}

publishRun(ROOT, {
  title: `Hostile clients, ${count(subscriberCount)} subscribers, writer at ${writeRate}/s`,
  failed,
  command:
    `npm run build --silent && npx tsx bench/abuse.ts ${process.argv.slice(2).join(' ')}`.trim(),
  options: `${count(subscriberCount)} SSE subscribers and a writer at ${writeRate} creates/s during each attack; a fresh server per attack; an attack's answer is given up after ${ms(attackTimeoutMs)}`,
  notes: [
    'Server: `node dist/main.js`, PGlite + filesystem storage in a fresh temp folder, log level warn; the attacker, subscribers and writer run in one process on the same cores, the probe on a thread of its own',
    '/health: one request at a time every 50 ms from its own connection and thread; "unanswered" means the last probe was still waiting when the attack ended (its wait counts as the max)',
    'Event latency: the writer’s POST sent → the subscriber’s socket read of its item.created, over every (event, subscriber) pair',
    `Load average (1 min) at start / end: ${loadAtStart.toFixed(2)} / ${(loadavg()[0] as number).toFixed(2)}`,
  ],
  headers: [
    'attack',
    'answer',
    'answer after',
    '/health p50 / p99 / max',
    'event latency p50 / p99',
    'server RSS idle → peak',
    'server CPU',
  ],
  rows,
  report: args['no-report'] ? undefined : (args.report as string),
})

process.exit(failed ? 1 : 0)
