import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { databaseUrlFor } from './postgres.js'

/**
 * The built server (`node dist/main.js`) and CLI as real child processes: tests talk to them
 * over HTTP, read what they print and send them real signals. globalSetup builds dist/.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const MAIN_JS = join(ROOT, 'dist', 'main.js')
export const CLI_JS = join(ROOT, 'dist', 'cli.js')

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

/**
 * The child's environment: the test's own, minus anything that would change how silo or node
 * behaves (an operator's SILO_* variables, NODE_OPTIONS such as --inspect), plus the given
 * SILO_* settings for one data folder.
 */
export function siloEnv(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('SILO_') || key === 'NODE_OPTIONS') continue
    env[key] = value
  }
  return {
    ...env,
    SILO_SERVER_HOST: '127.0.0.1',
    SILO_SERVER_PORT: '0',
    SILO_DATABASE_DATA_DIR: join(dataDir, 'db'),
    SILO_DATABASE_URL: databaseUrlFor(dataDir) ?? '',
    SILO_STORAGE_PATH: join(dataDir, 'files'),
    SILO_SERVER_PID_FILE: join(dataDir, 'silo.pid'),
    SILO_LOG_LEVEL: 'info',
    ...extra,
  }
}

const live = new Set<ChildProcess>()

/** Kills (SIGKILL) every child still running and waits until each has gone. */
export async function killChildren(): Promise<void> {
  const waits: Promise<unknown>[] = []
  for (const proc of live) {
    if (proc.exitCode === null && proc.signalCode === null) {
      waits.push(new Promise((done) => proc.once('exit', done)))
      proc.kill('SIGKILL')
    }
  }
  live.clear()
  await Promise.all(waits)
}

function track(proc: ChildProcess): Promise<Exit> {
  live.add(proc)
  return new Promise((done) => {
    // 'close' comes after the exit and after stdout/stderr have ended: all output is read.
    proc.once('close', (code, signal) => {
      live.delete(proc)
      done({ code, signal })
    })
  })
}

interface LineWaiter {
  check: () => boolean
}

export class SiloProcess {
  readonly proc: ChildProcess
  readonly pid: number
  readonly lines: string[] = []
  stderr = ''
  /** Resolves once the process has exited and all of its output has been read. */
  readonly exited: Promise<Exit>
  exit: Exit | null = null
  private partial = ''
  private waiters: LineWaiter[] = []
  private listeningUrl: string | null = null

  /** `viaNpm`: as `npm start` runs it, below npm and a shell (pid is then npm's). */
  constructor(env: NodeJS.ProcessEnv, options: { viaNpm?: boolean } = {}) {
    this.proc = options.viaNpm
      ? // The build is the suite's (globalSetup); prestart would rebuild dist/ under other tests.
        spawn('npm', ['start', '--ignore-scripts', '--silent'], { cwd: ROOT, env, stdio: 'pipe' })
      : spawn(process.execPath, [MAIN_JS], { cwd: ROOT, env, stdio: 'pipe' })
    if (this.proc.pid === undefined) throw new Error('could not spawn node dist/main.js')
    this.pid = this.proc.pid
    this.proc.stdout?.setEncoding('utf8')
    this.proc.stderr?.setEncoding('utf8')
    this.proc.stdout?.on('data', (chunk: string) => this.onStdout(chunk))
    this.proc.stderr?.on('data', (chunk: string) => {
      this.stderr += chunk
    })
    this.exited = track(this.proc).then((exit) => {
      if (this.partial) this.lines.push(this.partial)
      this.partial = ''
      this.exit = exit
      this.notify()
      return exit
    })
  }

  get running(): boolean {
    return this.exit === null && this.proc.exitCode === null && this.proc.signalCode === null
  }

  /** The base URL, once the listening line has been printed. */
  get url(): string {
    if (!this.listeningUrl) throw new Error('the server has not printed its address yet')
    return this.listeningUrl
  }

  get stdout(): string {
    return this.lines.join('\n')
  }

  /** stdout lines that are pino JSON log records, parsed. */
  get logs(): Record<string, unknown>[] {
    return this.lines
      .filter((line) => line.startsWith('{'))
      .map((line) => {
        try {
          return JSON.parse(line) as Record<string, unknown>
        } catch {
          return {}
        }
      })
  }

  /** Stops reading the child's stdout: its next writes there fail with EPIPE. */
  closeStdout(): void {
    this.proc.stdout?.destroy()
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.proc.kill(signal)) throw new Error(`could not send ${signal} to ${this.pid}`)
  }

  /**
   * Resolves with the first stdout line matching `pattern`; rejects, with the output so far,
   * if the process exits without printing one.
   */
  waitForLine(pattern: RegExp): Promise<RegExpMatchArray> {
    return new Promise((resolvePromise, reject) => {
      const check = () => {
        for (const line of this.lines) {
          const match = pattern.exec(line)
          if (match) {
            resolvePromise(match)
            return true
          }
        }
        if (this.exit) {
          reject(
            new Error(
              `silo exited (${JSON.stringify(this.exit)}) without printing ${pattern}\n` +
                `stdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
            ),
          )
          return true
        }
        return false
      }
      if (!check()) this.waiters.push({ check })
    })
  }

  /**
   * Waits for `silo listening on http://127.0.0.1:PORT (mode M, pid N)`; returns url, mode and
   * the server's pid.
   */
  async listening(): Promise<{ url: string; mode: string; pid: number }> {
    const match = await this.waitForLine(
      /^silo listening on (http:\/\/\S+) \(mode ([a-z-]+), pid ([0-9]+)\)$/,
    )
    this.listeningUrl = match[1] as string
    return { url: this.listeningUrl, mode: match[2] as string, pid: Number(match[3]) }
  }

  /** Waits for a pino record whose msg matches. */
  waitForLog(pattern: RegExp): Promise<RegExpMatchArray> {
    return this.waitForLine(new RegExp(`^\\{.*"msg":"${pattern.source}`))
  }

  private onStdout(chunk: string): void {
    const parts = (this.partial + chunk).split('\n')
    this.partial = parts.pop() ?? ''
    if (parts.length === 0) return
    this.lines.push(...parts)
    this.notify()
  }

  private notify(): void {
    this.waiters = this.waiters.filter((w) => !w.check())
  }
}

/** Starts `node dist/main.js` with the given environment (see siloEnv). */
export function spawnSilo(env: NodeJS.ProcessEnv, options: { viaNpm?: boolean } = {}): SiloProcess {
  return new SiloProcess(env, options)
}

/** Runs `node dist/cli.js ...args` to completion. */
export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<Exit & { stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [CLI_JS, ...args], { cwd: ROOT, env, stdio: 'pipe' })
  let stdout = ''
  let stderr = ''
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exit = await track(proc)
  return { ...exit, stdout, stderr }
}

/**
 * Tries a TCP connection; resolves 'connected' or the error code (ECONNREFUSED when nothing
 * listens).
 */
export function probeTcp(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolvePromise) => {
    const socket = connect(port, host)
    socket.once('connect', () => {
      socket.destroy()
      resolvePromise('connected')
    })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.destroy()
      resolvePromise(err.code ?? err.message)
    })
  })
}

/**
 * A free TCP port on 127.0.0.1 for a server the test starts itself (nginx, PostgreSQL), taken
 * below the kernel's ephemeral range: a port from there could be handed to an outgoing
 * connection while the server is stopped. Free when checked; the caller retries if it loses it.
 */
export async function freeLoopbackPort(): Promise<number> {
  let high = 32768
  try {
    const low = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0],
    )
    if (Number.isInteger(low) && low > 12000) high = low
  } catch {
    // not Linux: keep the default
  }
  const low = high - 10000
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low))
    const free = await new Promise<boolean>((resolvePromise) => {
      const server = createServer()
      server.once('error', () => resolvePromise(false))
      server.listen(port, '127.0.0.1', () => server.close(() => resolvePromise(true)))
    })
    if (free) return port
  }
  throw new Error(`no free port in ${low}-${high - 1}`)
}
