/**
 * Memory and start-up benchmark of the embedded default: what an operator's `ps` shows for an
 * idle silo on PGlite, on its first start (a fresh data folder, initdb included), after a
 * restart on the same folder, and with N idle SSE connections; and how long `npm start` takes
 * to listen on a tree whose build is up to date.
 *
 *   npm run build --silent && npx tsx bench/memory.ts [--clients 10000]
 *
 * The server runs with npm start's node options (see SiloServer). Floors measured in the same
 * run: bare PGlite (no silo around it, node's default options) on a fresh folder and reopened,
 * with the same shared_buffers, and `node dist/main.js` for `npm start`.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { benchArgs, numberArg } from './lib/cli.js'
import { requireOpenFilesFor } from './lib/fdLimit.js'
import { withInspector } from './lib/inspector.js'
import { peakResidentBytes, residentBytes } from './lib/procfs.js'
import { bytes, count, ms, publishRun } from './lib/report.js'
import { MAIN_JS, ROOT, SiloServer, stopOnSignals } from './lib/server.js'
import { SseLoad } from './lib/sseLoad.js'

const USAGE = `usage: npm run build --silent && npx tsx bench/memory.ts [options]
  --clients N          idle SSE connections in the last phase (default 1000)
  --settle S           seconds a started server is left alone before it is measured (default 20:
                       V8 collects an idle process's start-up garbage by itself some 10 s on,
                       and an idle server is what the figure is for)
  --shared-buffers S   PGlite's shared_buffers for the bare-PGlite floor, and for silo unless
                       --main is given (default 16MB)
  --main FILE          the server's entry point, e.g. an older build's dist/main.js for a before
                       figure (it then runs with its own PGlite settings; npm start is timed in
                       that tree); default dist/main.js
  --report FILE        where the section is appended (default docs/BENCHMARKS.md)
  --no-report          print the summary only`

const args = benchArgs(USAGE, {
  clients: { type: 'string', default: '1000' },
  settle: { type: 'string', default: '20' },
  'shared-buffers': { type: 'string', default: '16MB' },
  main: { type: 'string' },
})
const options = {
  clients: numberArg(args, 'clients', 'integer'),
  settleMs: numberArg(args, 'settle', 'non-negative') * 1000,
  sharedBuffers: args['shared-buffers'],
  mainJs: args.main === undefined ? MAIN_JS : resolve(args.main),
}
requireOpenFilesFor(options.clients)
const mainRoot = dirname(dirname(options.mainJs))
// An older build refuses settings it does not know.
const serverEnv: Record<string, string> =
  args.main === undefined ? { SILO_DATABASE_SHARED_BUFFERS: options.sharedBuffers } : {}

const log = (line: string) => process.stderr.write(`${line}\n`)
const rows: string[][] = []
const row = (phase: string, what: string, value: string, floor: string) =>
  rows.push([phase, what, value, floor])
let failed = false

interface Memory {
  asFound: number
  afterGc: number
  peak: number
}

/**
 * Bare PGlite in its own node process, as silo opens it but with nothing else loaded: the
 * floor under silo's figures. On an empty folder this includes initdb, in process.
 */
function barePglite(dataDir: string): Memory & { openMs: number } {
  const script = `
    import { PGlite } from '@electric-sql/pglite'
    import { readFileSync } from 'node:fs'
    const kib = (f) => Number(new RegExp('^' + f + ':\\\\s+(\\\\d+) kB$', 'm').exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024
    const started = performance.now()
    const pg = await PGlite.create(${JSON.stringify(dataDir)}, {
      startParams: [...PGlite.defaultStartParams, '-c', 'shared_buffers=${options.sharedBuffers}'],
    })
    await pg.query('SELECT 1')
    const openMs = performance.now() - started
    await new Promise((done) => setTimeout(done, ${options.settleMs}))
    const asFound = kib('VmRSS')
    global.gc(); global.gc()
    process.stdout.write(JSON.stringify({ openMs, asFound, afterGc: kib('VmRSS'), peak: kib('VmHWM') }))
    await pg.close()`
  const result = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
  })
  if (result.status !== 0) throw new Error(`bare PGlite failed: ${result.stderr}`)
  return JSON.parse(result.stdout) as Memory & { openMs: number }
}

/** The server's RSS as found, then after a forced full GC (through its inspector). */
async function serverMemory(server: SiloServer): Promise<Memory> {
  await fetch(`${server.url}/ready`)
  await sleep(options.settleMs)
  const asFound = residentBytes(server.pid)
  await withInspector(server.inspectorUrl, async (session) => {
    await session.collectGarbage()
    await session.collectGarbage()
  })
  return { asFound, afterGc: residentBytes(server.pid), peak: peakResidentBytes(server.pid) }
}

const memoryCell = (m: Memory) =>
  `${bytes(m.asFound)} / ${bytes(m.afterGc)} (peak ${bytes(m.peak)})`

/**
 * Spawns `npm start` in `root` on `dataDir` (a database made by an earlier start, so that
 * initdb stays out of the figure); resolves when it prints its address.
 */
async function timeNpmStart(root: string): Promise<number> {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('SILO_') && key !== 'NODE_OPTIONS') env[key] = value
  }
  Object.assign(env, {
    SILO_SERVER_PORT: '0',
    SILO_DATABASE_DATA_DIR: join(dataDir, 'db'),
    SILO_STORAGE_PATH: join(dataDir, 'files'),
    SILO_SERVER_PID_FILE: join(dataDir, 'silo.pid'),
    SILO_LOG_LEVEL: 'warn',
    ...serverEnv,
  })
  const started = performance.now()
  // Its own process group: npm, its shell and the server are stopped together.
  const proc = spawn('npm', ['start', '--silent'], { cwd: root, env, detached: true })
  try {
    return await new Promise<number>((done, reject) => {
      let out = ''
      proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk
        if (/^silo listening on /m.test(out)) done(performance.now() - started)
      })
      proc.once('exit', (code) => reject(new Error(`npm start exited (${code}): ${out}`)))
    })
  } finally {
    const exited = new Promise((done) => proc.once('exit', done))
    process.kill(-(proc.pid as number), 'SIGTERM')
    await exited
  }
}

const floorDir = mkdtempSync(join(tmpdir(), 'silo-bench-bare-'))
const dataDir = mkdtempSync(join(tmpdir(), 'silo-bench-'))
let server: SiloServer | undefined
stopOnSignals(() => server?.stop())
/** Starts silo on the run's data folder and records its memory and start time as `phase`. */
async function startMeasured(phase: string, floor: Memory & { openMs: number }) {
  server = await SiloServer.start({
    inspect: true,
    dataDir,
    mainJs: options.mainJs,
    env: serverEnv,
  })
  const listeningMs = server.listeningMs
  const memory = await serverMemory(server)
  row(
    phase,
    'RSS as found / after a full GC',
    memoryCell(memory),
    `bare PGlite ${memoryCell(floor)}`,
  )
  row(phase, 'spawn → listening', ms(listeningMs), `bare PGlite open ${ms(floor.openMs)}`)
  return { server, memory, listeningMs }
}

try {
  log(`bare PGlite (shared_buffers=${options.sharedBuffers}): fresh folder, then reopened`)
  const bareFresh = barePglite(join(floorDir, 'db'))
  const bareReopened = barePglite(join(floorDir, 'db'))

  log('silo: first start on a fresh data folder')
  const first = await startMeasured('first start', bareFresh)
  const token = first.server.adminToken
  await first.server.stop()

  log('silo: restart on the same folder')
  const {
    server: running,
    memory: restarted,
    listeningMs: restartListening,
  } = await startMeasured('restart', bareReopened)

  log(`silo: ${count(options.clients)} idle SSE connections`)
  const load = new SseLoad({ baseUrl: running.url, token })
  const opened = await load.open(options.clients, 100, 1024)
  const seen = await running.waitForSseClients(options.clients)
  if (opened.opened < options.clients || seen < options.clients) failed = true
  const idle = await serverMemory(running)
  const perConnection = (idle.afterGc - restarted.afterGc) / options.clients
  row(
    `${count(options.clients)} idle SSE`,
    'RSS as found / after a full GC',
    memoryCell(idle),
    `restart, no client: ${bytes(restarted.afterGc)} after GC`,
  )
  row(
    `${count(options.clients)} idle SSE`,
    'RSS per connection over no client (after GC)',
    bytes(perConnection),
    `${count(seen)} counted by /ready`,
  )
  load.close()
  await running.stop()
  server = undefined

  log(`npm start in ${mainRoot} on the same folder, twice (the second on a tree the first built)`)
  const npmFirst = await timeNpmStart(mainRoot)
  const npmAgain = await timeNpmStart(mainRoot)
  row(
    'npm start',
    'spawn → listening, first call / again',
    `${ms(npmFirst)} / ${ms(npmAgain)}`,
    `node dist/main.js ${ms(restartListening)} (restart above)`,
  )
} catch (err) {
  failed = true
  log(String((err as Error).stack ?? err))
} finally {
  await server?.stop()
  rmSync(floorDir, { recursive: true, force: true })
  rmSync(dataDir, { recursive: true, force: true })
}

publishRun(ROOT, {
  title: `Memory and start, embedded default, ${count(options.clients)} idle SSE clients`,
  failed,
  command: `npx tsx bench/memory.ts ${process.argv.slice(2).join(' ')}`.trim(),
  options: `${count(options.clients)} clients, settle ${options.settleMs / 1000} s, shared_buffers ${options.sharedBuffers} (floor${args.main === undefined ? ' and silo' : ''}), server ${args.main ?? 'dist/main.js'}`,
  notes: [
    'RSS from /proc/<pid>/status (VmRSS) after the server sat idle for the settle time; "after a full GC" forced twice through the inspector; peak is VmHWM',
  ],
  headers: ['phase', 'what', 'figure', 'floor / peer in the same run'],
  rows,
  report: args['no-report'] ? undefined : args.report,
})
process.exit(failed ? 1 : 0)
