import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { INSPECTOR_URL } from './inspector.js'
import { noteCommitAtStart } from './report.js'

/** On Ctrl-C or SIGTERM, stops what `stop` stops (the server under test) and exits 130. */
export function stopOnSignals(stop: () => Promise<unknown> | undefined): void {
  const onSignal = () => {
    void (stop() ?? Promise.resolve()).finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
}

/** The repository root (bench/lib/ is two levels below it). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const MAIN_JS = join(ROOT, 'dist', 'main.js')
// Every harness imports this module before it builds anything or starts a server.
noteCommitAtStart(ROOT)

/**
 * The options `npm start` gives node in the tree at `root` (its package.json start script), so
 * that a benchmark runs the server as operators do, an older tree's for a before figure.
 */
export function startNodeOptions(root: string): string[] {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    scripts?: { start?: string }
  }
  const start = /^node((?: --\S+)*) dist\/main\.js$/.exec(pkg.scripts?.start ?? '')
  if (!start) throw new Error(`${root}/package.json: start is not "node [options] dist/main.js"`)
  return (start[1] as string).split(' ').filter(Boolean)
}

// The pid is optional: a before/after comparison runs these harnesses against older builds too.
const LISTENING = /^silo listening on (http:\/\/\S+) \(mode ([a-z-]+)(?:, pid [0-9]+)?\)$/
const TOKEN_INTRO = /^first start: created admin token/
const TOKEN = /^\s+(silo_\S+)\s*$/

export interface StartOptions {
  /** Extra SILO_* settings on top of the benchmark defaults. */
  env?: Record<string, string>
  /** Options for node itself, before dist/main.js (e.g. --cpu-prof). */
  nodeArgs?: string[]
  /**
   * Start node's inspector on a free loopback port (see inspector.ts); its URL is in
   * `inspectorUrl` once started.
   */
  inspect?: boolean
  /** How long start-up may take before the run gives up. */
  startTimeoutMs?: number
  /**
   * A data folder the caller owns (kept on stop), e.g. to restart on it; a fresh temporary one
   * by default. A folder that already holds a database prints no admin token.
   */
  dataDir?: string
  /** The entry point to run, e.g. an older build's for a before figure; dist/main.js by default. */
  mainJs?: string
}

/** How the server process ended. */
export interface ServerExit {
  code: number | null
  signal: NodeJS.Signals | null
  /** From the signal being sent to the process having exited, in milliseconds. */
  stopMs: number
}

/**
 * silo as a separate process (`node dist/main.js` with npm start's node options) on a free
 * loopback port with a fresh data folder, as an operator would run it; the benchmark only talks to it over HTTP and reads
 * /proc/<pid>. Build dist/ first (`npm run bench` does).
 */
export class SiloServer {
  readonly pid: number
  readonly dataDir: string
  url = ''
  adminToken = ''
  mode = ''
  inspectorUrl = ''
  /** From spawning the process to its listening line, in milliseconds. */
  listeningMs = 0
  private readonly inspect: boolean
  private readonly ownsDataDir: boolean
  private readonly expectsToken: boolean
  private readonly spawnedAt = performance.now()
  private readonly proc: ChildProcess
  private readonly output: string[] = []
  private stderr = ''
  private partial = ''
  private tokenNext = false
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null
  private readonly exited: Promise<void>
  private onLine: (() => void) | null = null

  private constructor(options: StartOptions) {
    this.inspect = options.inspect ?? false
    this.ownsDataDir = options.dataDir === undefined
    this.dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'silo-bench-'))
    this.expectsToken = !existsSync(join(this.dataDir, 'db', 'PG_VERSION'))
    const mainJs = options.mainJs ?? MAIN_JS
    const env: NodeJS.ProcessEnv = {}
    // Nothing from the caller's environment may change how silo or node behaves.
    for (const [key, value] of Object.entries(process.env)) {
      if (key.startsWith('SILO_') || key === 'NODE_OPTIONS') continue
      env[key] = value
    }
    Object.assign(env, {
      SILO_SERVER_HOST: '127.0.0.1',
      SILO_SERVER_PORT: '0',
      SILO_DATABASE_DATA_DIR: join(this.dataDir, 'db'),
      SILO_STORAGE_PATH: join(this.dataDir, 'files'),
      SILO_SERVER_PID_FILE: join(this.dataDir, 'silo.pid'),
      SILO_LOG_LEVEL: 'warn',
      // The load clients hold thousands of streams on the one admin token; the per-token cap
      // (100 by default) is for hostile clients, which bench/abuse.ts measures with it on.
      SILO_EVENTS_MAX_STREAMS_PER_TOKEN: '1000000',
      ...options.env,
    })
    this.proc = spawn(
      process.execPath,
      [
        ...startNodeOptions(dirname(dirname(mainJs))),
        ...(this.inspect ? ['--inspect=127.0.0.1:0'] : []),
        ...(options.nodeArgs ?? []),
        mainJs,
      ],
      {
        cwd: ROOT,
        env,
        stdio: 'pipe',
      },
    )
    if (this.proc.pid === undefined) throw new Error(`could not spawn node ${mainJs}`)
    this.pid = this.proc.pid
    this.proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.onStdout(chunk))
    this.proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      // Keep the tail only: a long run at warn level should print little, but never grow.
      this.stderr = (this.stderr + chunk).slice(-20_000)
      if (this.inspect && !this.inspectorUrl) {
        this.inspectorUrl = INSPECTOR_URL.exec(this.stderr)?.[1] ?? ''
        if (this.inspectorUrl) this.onLine?.()
      }
    })
    this.exited = new Promise((done) => {
      this.proc.once('exit', (code, signal) => {
        this.exitInfo = { code, signal }
        this.onLine?.()
        done()
      })
    })
  }

  /** Starts the server and waits for its address and first-start admin token. */
  static async start(options: StartOptions = {}): Promise<SiloServer> {
    const server = new SiloServer(options)
    try {
      await server.waitForStartLines(options.startTimeoutMs ?? 60_000)
    } catch (err) {
      await server.stop().catch(() => {})
      throw err
    }
    return server
  }

  get running(): boolean {
    return this.exitInfo === null
  }

  /** Output the server printed (stdout lines, then the stderr tail), for error messages. */
  get printed(): string {
    // The token is a throwaway, but an error message has no reason to carry it.
    return `${this.output.join('\n')}\n${this.stderr}`.replace(/silo_\S+/g, 'silo_…')
  }

  /** Waits until /ready counts at least `n` SSE clients; returns the last count seen. */
  async waitForSseClients(n: number, timeoutMs = 60_000): Promise<number> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const ready = (await (await fetch(`${this.url}/ready`)).json()) as { sse_clients?: number }
      const seen = ready.sse_clients ?? -1
      if (seen >= n || performance.now() > deadline) return seen
      await sleep(100)
    }
  }

  /**
   * Sends SIGTERM, waits for the exit (SIGKILL after `timeoutMs`), removes the data folder unless
   * the caller gave it.
   */
  async stop(timeoutMs = 30_000): Promise<ServerExit> {
    const started = performance.now()
    let stopMs = 0
    if (this.running) {
      this.proc.kill('SIGTERM')
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs)
      await this.exited
      clearTimeout(timer)
      stopMs = performance.now() - started
    }
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true })
    return { ...(this.exitInfo ?? { code: null, signal: null }), stopMs }
  }

  private waitForStartLines(timeoutMs: number): Promise<void> {
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        this.onLine = null
        reject(new Error(`silo did not start within ${timeoutMs} ms\n${this.printed}`))
      }, timeoutMs)
      this.onLine = () => {
        const tokenRead = this.adminToken || !this.expectsToken
        if (this.url && tokenRead && (this.inspectorUrl || !this.inspect)) {
          clearTimeout(timer)
          this.onLine = null
          resolvePromise()
        } else if (this.exitInfo) {
          clearTimeout(timer)
          this.onLine = null
          reject(
            new Error(
              `silo exited (${JSON.stringify(this.exitInfo)}) before printing its address ` +
                `and admin token\n${this.printed}`,
            ),
          )
        }
      }
      this.onLine()
    })
  }

  /** main.ts prints the address, then (first start only) the admin token on the next line. */
  private readStartLine(line: string): void {
    const listening = LISTENING.exec(line)
    if (listening) {
      this.url = listening[1] as string
      this.listeningMs = performance.now() - this.spawnedAt
      this.mode = listening[2] as string
    } else if (this.tokenNext) {
      this.adminToken = TOKEN.exec(line)?.[1] ?? ''
    }
    this.tokenNext = TOKEN_INTRO.test(line)
  }

  private onStdout(chunk: string): void {
    const lines = (this.partial + chunk).split('\n')
    this.partial = lines.pop() ?? ''
    for (const line of lines) {
      this.readStartLine(line)
      // Keep a bounded tail for error messages.
      this.output.push(line)
      if (this.output.length > 200) this.output.splice(0, this.output.length - 200)
    }
    if (lines.length > 0) this.onLine?.()
  }
}
