import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool } from 'undici'
import { INSPECTOR_URL, withInspector } from '../lib/inspector.js'
import { residentBytes } from '../lib/procfs.js'
import { ROOT, SiloServer } from '../lib/server.js'

/** The three servers the peers benchmark compares, in the order it runs them. */
export const SERVER_NAMES = ['silo', 'nchan', 'better-sse'] as const
export type ServerName = (typeof SERVER_NAMES)[number]

/** Resident memory: as found, and after a forced full GC where the server has a GC. */
export interface MemoryReading {
  rssAsFound: number
  rss: number
}

/** One server under test, as a separate process the load client only reaches over HTTP. */
export interface BenchServer {
  readonly name: ServerName
  readonly pid: number
  /** Where `GET /api/events` is served. */
  readonly url: string
  /** Bearer token for the SSE clients ('' when the server has no auth). */
  readonly token: string
  /** What it is, for the record (command line, versions). */
  readonly description: string
  readMemory(): Promise<MemoryReading>
  /** How many SSE subscribers the server itself counts. */
  subscribers(): Promise<number>
  stop(): Promise<void>
}

/** A free TCP port on the loopback interface (for nginx, which cannot listen on port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      )
    })
  })
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<unknown> {
  const pool = new Pool(new URL(url).origin, { connections: 1 })
  try {
    const { body } = await pool.request({
      method: 'GET',
      path: new URL(url).pathname,
      headers: { accept: 'application/json', ...headers },
    })
    const text = await body.text()
    // nchan answers 404 with no body for a channel nobody has used yet.
    return text ? (JSON.parse(text) as unknown) : {}
  } finally {
    await pool.close()
  }
}

/** After two forced full collections through the inspector (node servers only). */
async function gcMemory(pid: number, inspectorUrl: string): Promise<MemoryReading> {
  const rssAsFound = residentBytes(pid)
  await withInspector(inspectorUrl, async (session) => {
    await session.collectGarbage()
    await session.collectGarbage()
  })
  return { rssAsFound, rss: residentBytes(pid) }
}

/** silo as bench/fanout.ts runs it: dist/main.js, PGlite + filesystem in a temp folder. */
export async function startSilo(): Promise<BenchServer> {
  const server = await SiloServer.start({ inspect: true })
  return {
    name: 'silo',
    pid: server.pid,
    url: server.url,
    token: server.adminToken,
    description:
      '`node --inspect=127.0.0.1:0 dist/main.js`, PGlite + filesystem storage in a fresh temp folder, log level warn; publish = `POST /api/items` (a PGlite write, then the broker)',
    readMemory: () => gcMemory(server.pid, server.inspectorUrl),
    subscribers: async () =>
      ((await getJson(`${server.url}/ready`)) as { sse_clients?: number }).sse_clients ?? -1,
    stop: async () => {
      await server.stop()
    },
  }
}

/** Lines a child process printed, and a wait for one of them. */
class ChildOutput {
  text = ''
  private waiters: (() => void)[] = []

  constructor(proc: ChildProcess) {
    const add = (chunk: string) => {
      this.text = (this.text + chunk).slice(-20_000)
      for (const waiter of this.waiters) waiter()
    }
    proc.stdout?.setEncoding('utf8').on('data', add)
    proc.stderr?.setEncoding('utf8').on('data', add)
    proc.once('exit', () => add(''))
  }

  wait<T>(find: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = find()
        if (found === undefined) return
        clearTimeout(timer)
        this.waiters = this.waiters.filter((w) => w !== check)
        resolve(found)
      }
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check)
        reject(new Error(`${what} not seen within ${timeoutMs} ms\n${this.text}`))
      }, timeoutMs)
      this.waiters.push(check)
      check()
    })
  }
}

function stopChild(proc: ChildProcess, timeoutMs = 10_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
    proc.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    proc.kill('SIGTERM')
  })
}

export const NGINX = '/usr/sbin/nginx'
const NCHAN_MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so'

/** `nginx -v` (printed on stderr) and the Debian package version of the nchan module. */
export function nginxVersions(): { nginx: string; nchan: string } {
  let nginx = 'unknown'
  let nchan = 'unknown'
  try {
    // nginx -v prints on stderr.
    nginx = execFileSync('sh', ['-c', `${NGINX} -v 2>&1`], { encoding: 'utf8' }).trim() || nginx
    nchan = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'libnginx-mod-nchan'], {
      encoding: 'utf8',
    }).trim()
  } catch {
    // not Debian: the module version stays unknown
  }
  return { nginx: nginx.replace(/^nginx version: /, ''), nchan }
}

/**
 * The nginx + nchan configuration: one worker, everything under `prefix`. nchan takes more
 * connection slots than there are sockets (at 10,000 subscribers, 10,512 were "not enough").
 */
function nchanConfig(prefix: string, port: number, connections: number): string {
  return `load_module ${NCHAN_MODULE};
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile ${connections + 1024};
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections ${2 * connections + 1024}; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  client_body_buffer_size 16k;
  server {
    listen 127.0.0.1:${port};
    # Subscribers: EventSource only; each message as event: item.created, id: <time>:<tag>.
    location = /api/events {
      nchan_subscriber eventsource;
      nchan_channel_id bench;
      nchan_eventsource_event item.created;
    }
    # Publisher: POST the payload; GET answers the channel's subscriber count.
    location = /pub {
      nchan_publisher;
      nchan_channel_id bench;
      nchan_message_buffer_length 100;
      nchan_message_timeout 5m;
    }
  }
}
`
}

/** nginx with the nchan module, one process (master_process off), config in a temp prefix. */
export async function startNchan(connections: number): Promise<BenchServer> {
  const prefix = mkdtempSync(join(tmpdir(), 'silo-bench-nchan-'))
  mkdirSync(join(prefix, 'tmp'))
  const port = await freePort()
  const config = join(prefix, 'nginx.conf')
  writeFileSync(config, nchanConfig(prefix, port, connections))
  const proc = spawn(NGINX, ['-p', prefix, '-c', config], { stdio: 'pipe' })
  if (proc.pid === undefined) throw new Error(`could not spawn ${NGINX}`)
  const output = new ChildOutput(proc)
  const url = `http://127.0.0.1:${port}`
  const subscribers = async () =>
    ((await getJson(`${url}/pub`)) as { subscribers?: number }).subscribers ?? 0
  // nginx prints nothing when it starts well: poll the publisher location.
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      await subscribers()
      break
    } catch (err) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        proc.kill('SIGKILL')
        let log = ''
        try {
          log = readFileSync(join(prefix, 'error.log'), 'utf8')
        } catch {
          // no log yet
        }
        throw new Error(`nginx did not start: ${(err as Error).message}\n${output.text}\n${log}`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  const pid = proc.pid
  return {
    name: 'nchan',
    pid,
    url,
    token: '',
    description: `\`nginx -p <tmp> -c nginx.conf\` (master_process off, worker_processes 1), \`nchan_subscriber eventsource\` + \`nchan_publisher\` on one channel, memory store; publish = \`POST /pub\` with the payload`,
    readMemory: async () => {
      const rss = residentBytes(pid)
      return { rssAsFound: rss, rss }
    },
    subscribers,
    stop: async () => {
      // QUIT is nginx's graceful stop; TERM is fast. Either way the clients are closed first.
      await stopChild(proc)
      rmSync(prefix, { recursive: true, force: true })
    },
  }
}

/** bench/peers/betterSse.ts under node (with tsx as the loader). */
export async function startBetterSse(): Promise<BenchServer> {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0' }
  delete env.NODE_OPTIONS
  const proc = spawn(
    process.execPath,
    ['--inspect=127.0.0.1:0', '--import', 'tsx', join(ROOT, 'bench', 'peers', 'betterSse.ts')],
    { cwd: ROOT, env, stdio: 'pipe' },
  )
  if (proc.pid === undefined) throw new Error('could not spawn node for better-sse')
  const output = new ChildOutput(proc)
  const found = await output.wait(
    () => {
      const url = /listening on (http:\/\/\S+)/.exec(output.text)?.[1]
      const inspector = INSPECTOR_URL.exec(output.text)?.[1]
      if (proc.exitCode !== null) throw new Error(`better-sse server exited\n${output.text}`)
      return url && inspector ? { url, inspector } : undefined
    },
    30_000,
    'better-sse server address',
  )
  const pid = proc.pid
  return {
    name: 'better-sse',
    pid,
    url: found.url,
    token: '',
    description:
      '`node --inspect=127.0.0.1:0 --import tsx bench/peers/betterSse.ts`: Fastify 5 + better-sse, one channel, no database; publish = `POST /pub` with the payload',
    readMemory: () => gcMemory(pid, found.inspector),
    subscribers: async () =>
      ((await getJson(`${found.url}/ready`)) as { sse_clients?: number }).sse_clients ?? -1,
    stop: () => stopChild(proc),
  }
}
