import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Database } from '../src/db/database.js'
import { openPostgres } from '../src/db/postgres.js'
import { createToken } from '../src/domain/tokens.js'
import {
  freeLoopbackPort,
  killChildren,
  probeTcp,
  siloEnv,
  type SiloProcess,
  spawnSilo,
} from './support/child.js'
import { databaseUrlFor, testDatabaseServer } from './support/postgres.js'
import { api, freshDataDir, removeDataDir } from './support/server.js'
import { SseClient } from './support/sseClient.js'

/**
 * Two replicas behind a real nginx running deploy/nginx.conf (issue 4). The configuration under
 * test is the shipped file itself, with only what cannot run here substituted: the upstream's
 * placeholder addresses become the two replicas, TLS and HTTP/2 become plain HTTP/1.1 on a free
 * loopback port, log and temp paths go to a temp folder, and a response header naming the
 * replica that answered ($upstream_addr) is added so the test can tell where nginx sent a
 * request.
 */

const NGINX_CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx']
const nginxBinary = NGINX_CANDIDATES.find((path) => existsSync(path))
const databaseServer = testDatabaseServer()
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const DEPLOY_CONF = join(ROOT, 'deploy', 'nginx.conf')
const UPSTREAM_HEADER = 'x-silo-upstream'

const skipReason = !nginxBinary
  ? `nginx is not installed (looked in ${NGINX_CANDIDATES.join(', ')}); .ci/run installs it`
  : !databaseServer
    ? 'SILO_TEST_DATABASE_URL is not set; replicas need a shared PostgreSQL server'
    : undefined
const TITLE = 'two replicas behind nginx with deploy/nginx.conf'

/** An event a buffering proxy would hold back arrives well within this. */
const UNBUFFERED_DEADLINE_MS = 10_000

const run = promisify(execFile)

// --- the configuration -------------------------------------------------------------------

/** The text of the `{ ... }` block that opens at `open` (the index of its `{`), braces included. */
function blockAt(text: string, open: number): string {
  let depth = 0
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++
    else if (text[i] === '}' && --depth === 0) return text.slice(open, i + 1)
  }
  throw new Error('deploy/nginx.conf: unbalanced braces')
}

/** Every top-level `<keyword> ... { ... }` block, with where it starts and ends. */
function topLevelBlocks(text: string, keyword: string) {
  const blocks: { start: number; end: number; head: string; body: string }[] = []
  const pattern = new RegExp(`^${keyword}\\b[^{;]*\\{`, 'gm')
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
    const open = match.index + match[0].length - 1
    const body = blockAt(text, open)
    blocks.push({ start: match.index, end: open + body.length, head: match[0], body })
    pattern.lastIndex = open + body.length
  }
  return blocks
}

interface Paths {
  dir: string
  port: number
  replicas: string[]
}

/**
 * deploy/nginx.conf (an `http {}` snippet) made runnable here. Throws, naming what it expected,
 * when the file no longer has the shape these substitutions rely on.
 */
function nginxConfFromDeploy(source: string, { dir, port, replicas }: Paths): string {
  // Comments go first: they quote directives (`listen 443 ssl;`) that must not be matched.
  let conf = source.replace(/^[ \t]*#.*\n/gm, '').replace(/(^|\s)#.*$/gm, '$1')

  const upstreams = topLevelBlocks(conf, 'upstream')
  if (upstreams.length !== 1) {
    throw new Error(`deploy/nginx.conf: expected one upstream block, found ${upstreams.length}`)
  }
  const upstream = upstreams[0] as (typeof upstreams)[number]
  const serverLines = [...upstream.body.matchAll(/^\s*server\s+\S+([^;]*);/gm)]
  if (serverLines.length === 0) throw new Error('deploy/nginx.conf: no upstream server lines')
  // Every replica takes the place of the placeholders, with the first one's parameters
  // (max_fails, fail_timeout...).
  const params = serverLines[0]?.[1] ?? ''
  const replicaLines = replicas.map((r) => `    server ${r}${params};`).join('\n')
  let first = true
  const upstreamBody = upstream.body.replace(/^\s*server\s+\S+[^;]*;[ \t]*\n/gm, () => {
    if (!first) return ''
    first = false
    return `${replicaLines}\n`
  })
  conf =
    conf.slice(0, upstream.start) +
    upstream.head.slice(0, -1) +
    upstreamBody +
    conf.slice(upstream.end)

  // The server block with locations is the site; others (the HTTP -> HTTPS redirect) go.
  const servers = topLevelBlocks(conf, 'server')
  const sites = servers.filter((s) => /\blocation\b/.test(s.body))
  if (sites.length !== 1) {
    throw new Error(
      `deploy/nginx.conf: expected one server block with locations, found ${sites.length}`,
    )
  }
  const site = sites[0] as (typeof sites)[number]
  let siteBody = site.body
    .replace(/^\s*listen\s[^;]*;\s*$/gm, '')
    .replace(/^\s*ssl_\w+\s[^;]*;\s*$/gm, '')
    .replace(/^\s*http2\s[^;]*;\s*$/gm, '')
    .replace(/(^\s*access_log\s+)\S+/gm, `$1${join(dir, 'access.log')}`)
  siteBody = siteBody.replace(
    /^\{/,
    `{\n    listen 127.0.0.1:${port};\n    add_header X-Silo-Upstream $upstream_addr always;\n`,
  )
  let rebuilt = ''
  let at = 0
  for (const server of servers) {
    rebuilt += conf.slice(at, server.start)
    if (server === site) rebuilt += server.head.slice(0, -1) + siteBody
    at = server.end
  }
  conf = rebuilt + conf.slice(at)

  return [
    'daemon off;',
    'master_process off;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} info;`,
    'events { worker_connections 1024; }',
    'http {',
    `  access_log ${join(dir, 'access.log')};`,
    `  client_body_temp_path ${join(dir, 'client_body')};`,
    `  proxy_temp_path ${join(dir, 'proxy')};`,
    `  fastcgi_temp_path ${join(dir, 'fastcgi')};`,
    `  uwsgi_temp_path ${join(dir, 'uwsgi')};`,
    `  scgi_temp_path ${join(dir, 'scgi')};`,
    conf,
    '}',
    '',
  ].join('\n')
}

// --- processes ---------------------------------------------------------------------------

interface Nginx {
  url: string
  proc: ChildProcess
  errorLog(): string
  stop(): Promise<void>
}

/** Runs nginx in the foreground (single process) with the generated configuration. */
async function startNginx(binary: string, replicas: string[]): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'silo-nginx-'))
  const port = await freeLoopbackPort()
  const confPath = join(dir, 'nginx.conf')
  const errorLogPath = join(dir, 'error.log')
  writeFileSync(
    confPath,
    nginxConfFromDeploy(readFileSync(DEPLOY_CONF, 'utf8'), { dir, port, replicas }),
  )
  const errorLog = () => (existsSync(errorLogPath) ? readFileSync(errorLogPath, 'utf8') : '')
  const args = ['-p', dir, '-c', confPath, '-e', errorLogPath]
  try {
    await run(binary, [...args, '-t'])
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`nginx -t refused the generated configuration: ${(err as Error).message}`)
  }
  const proc = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = new Promise<void>((done) => proc.once('close', () => done()))
  // nginx says nothing when it is ready: wait until the port takes connections.
  for (let attempt = 0; ; attempt++) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`nginx exited at start-up:\n${stderr}\n${errorLog()}`)
    }
    if ((await probeTcp(port)) === 'connected') break
    if (attempt > 400) throw new Error(`nginx did not listen on ${port}:\n${errorLog()}`)
    await delay(25)
  }
  return {
    url: `http://127.0.0.1:${port}`,
    proc,
    errorLog,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      await exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

interface Replica {
  child: SiloProcess
  url: string
  /** host:port, as nginx's $upstream_addr names it. */
  address: string
}

// --- the tests ---------------------------------------------------------------------------

describe.skipIf(skipReason !== undefined)(
  skipReason ? `${TITLE} (skipped: ${skipReason})` : TITLE,
  () => {
    let dir: string
    let db: Database
    let tokens: { admin: string; editor: string; viewer: string }
    let a: Replica
    let b: Replica
    let nginx: Nginx
    const clients: SseClient[] = []

    function subscribe(baseUrl: string, options: ConstructorParameters<typeof SseClient>[1]) {
      const client = new SseClient(baseUrl, { token: tokens.viewer, ...options })
      clients.push(client)
      return client
    }

    beforeAll(async () => {
      dir = freshDataDir()
      db = openPostgres({
        url: databaseUrlFor(dir) as string,
        poolSize: 1,
        connectTimeoutMs: 5000,
        onError: () => {},
      })
      tokens = {
        admin: (await createToken(db, { name: 'admin', role: 'admin' })).token,
        editor: (await createToken(db, { name: 'editor', role: 'editor' })).token,
        viewer: (await createToken(db, { name: 'viewer', role: 'viewer' })).token,
      }
      // As deploy/nginx.conf asks of every replica.
      const env = siloEnv(dir, { SILO_SERVER_TRUST_PROXY: 'true', SILO_LOG_LEVEL: 'warn' })
      const started = async (child: SiloProcess): Promise<Replica> => {
        const { url } = await child.listening()
        return { child, url, address: new URL(url).host }
      }
      ;[a, b] = await Promise.all([started(spawnSilo(env)), started(spawnSilo(env))])
      nginx = await startNginx(nginxBinary as string, [a.address, b.address])
    })

    afterEach(() => {
      // Open streams count as nginx connections, which least_conn balances by.
      for (const client of clients.splice(0)) client.close()
    })

    afterAll(async () => {
      await nginx?.stop()
      await killChildren()
      await db?.close()
      if (dir) removeDataDir(dir)
    })

    it('streams events through nginx as they happen: SSE headers intact, not compressed, not buffered', async () => {
      // Given a client on the stream through nginx that would accept gzip
      const client = subscribe(nginx.url, { headers: { 'Accept-Encoding': 'gzip' } })
      // Then the greeting (a few dozen bytes, which a buffering proxy would sit on) arrives
      await withDeadline(client.waitForEvent('server.state'), 'the greeting through nginx')
      expect(client.status).toBe(200)
      expect(client.headers['content-type']).toMatch(/^text\/event-stream/)
      expect(client.headers['cache-control']).toBe('no-cache')
      expect(client.headers['content-encoding']).toBeUndefined()
      expect(client.headers[UPSTREAM_HEADER]).toMatch(/^127\.0\.0\.1:[0-9]+$/)

      // When an item is written, through nginx too
      const created = await api(nginx, 'POST', '/api/items', {
        token: tokens.editor,
        body: { part_number: 'NGX-1', item_type: 'part', description: 'through nginx' },
      })
      expect(created.status).toBe(201)

      // Then its event reaches the client at once, whichever replica each of them landed on
      const event = await withDeadline(
        client.waitForEvent('item.created', (e) => e.data.part_number === 'NGX-1'),
        'item.created for NGX-1 through nginx',
      )
      expect(event.id).toBeGreaterThan(0)

      // and a client that reconnects through nginx with its Last-Event-ID gets what it missed
      await api(nginx, 'POST', '/api/items', {
        token: tokens.editor,
        body: { part_number: 'NGX-2', item_type: 'part' },
      })
      const again = subscribe(nginx.url, { lastEventId: event.id })
      const missed = await withDeadline(
        again.waitForEvent('item.created'),
        'the replayed event through nginx',
      )
      expect(missed.data.part_number).toBe('NGX-2')
      expect(again.stored.map((e) => e.id)).toEqual([(event.id as number) + 1])
    })

    it("serves the console and takes its session cookie's writes through nginx, on a port of its own", async () => {
      // The browser's Origin carries nginx's port: the Host nginx passes on must carry it too,
      // or every write with the cookie would look cross-site.
      const page = await fetch(`${nginx.url}/`)
      expect(page.status).toBe(200)
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'")
      const signIn = await fetch(`${nginx.url}/api/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: nginx.url },
        body: JSON.stringify({ token: tokens.editor }),
      })
      expect(signIn.status).toBe(201)
      const cookie = /^(silo_session=[^;]+)/.exec(signIn.headers.get('set-cookie') ?? '')?.[1]
      const created = await fetch(`${nginx.url}/api/items`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          cookie: cookie as string,
          origin: nginx.url,
          'sec-fetch-site': 'same-origin',
        },
        body: JSON.stringify({ part_number: 'VIA-NGINX-COOKIE', item_type: 'part' }),
      })
      expect(created.status).toBe(201)
    })

    it('answers /ready and /health through nginx', async () => {
      const ready = await api(nginx, 'GET', '/ready')
      expect(ready.status).toBe(200)
      expect(ready.body).toMatchObject({ status: 'ready', database: 'ok' })
      const health = await api(nginx, 'GET', '/health')
      expect(health.status).toBe(200)
      expect(health.body).toMatchObject({ status: 'ok' })
    })

    /*
     * Fleet semantics of read-only, as they stand: SIGUSR1 (and server.read_only) is a switch of
     * one replica; PUT /api/admin/mode is the fleet's switch, stored in the database. With only
     * A's switch on, A refuses writes and B takes them, and nginx does not hide the difference
     * for POST: it never repeats a POST on another replica, so a POST that lands on A is answered
     * 503 server_read_only (with Retry-After), and one that lands on B is written. A DELETE that
     * A refuses is repeated on B (deploy/nginx.conf: proxy_next_upstream http_503), so it is
     * carried out. Taking writes away from the whole fleet is the admin API's job.
     */
    it('SIGUSR1 makes only that replica read-only; through nginx a POST is written by the other or refused by it, a DELETE is carried out by the other', async () => {
      // Given a client connected straight to A, to see A's mode change
      const onA = subscribe(a.url, {})
      await onA.waitForEvent('server.state', (e) => e.data.mode === 'normal')

      // When the operator sends A a SIGUSR1
      a.child.signal('SIGUSR1')
      await onA.waitForEvent('server.state', (e) => e.data.mode === 'read-only')

      // Then A, asked directly, is read-only by its own switch, and B is not touched
      expect((await api(a, 'GET', '/health')).body).toEqual({ status: 'ok', mode: 'read-only' })
      expect((await api(b, 'GET', '/health')).body).toEqual({ status: 'ok', mode: 'normal' })
      const modeA = await api(a, 'GET', '/api/admin/mode', { token: tokens.admin })
      expect(modeA.body).toMatchObject({ read_only_local: true, read_only_fleet: false })
      const modeB = await api(b, 'GET', '/api/admin/mode', { token: tokens.admin })
      expect(modeB.body).toMatchObject({ mode: 'normal', read_only: false })

      // and through nginx, each POST is answered by the replica it landed on
      const outcomes: string[] = []
      for (let i = 0; i < 6; i++) {
        const res = await api(nginx, 'POST', '/api/items', {
          token: tokens.editor,
          body: { part_number: `USR1-${i}`, item_type: 'part' },
        })
        const upstream = res.headers.get(UPSTREAM_HEADER)
        if (upstream === a.address) {
          expect(res.status).toBe(503)
          expect(res.body).toMatchObject({ error: 'server_read_only' })
          expect(res.headers.get('retry-after')).toMatch(/^[0-9]+$/)
          expect(
            (await api(b, 'GET', `/api/items/USR1-${i}`, { token: tokens.viewer })).status,
          ).toBe(404)
          outcomes.push('refused by A')
        } else {
          expect(upstream, 'a POST is never tried on a second replica').toBe(b.address)
          expect(res.status).toBe(201)
          outcomes.push('written by B')
        }
      }
      // The fleet as a whole still takes writes.
      expect(outcomes).toContain('written by B')

      // A DELETE, which nginx may repeat (proxy_next_upstream http_503), is carried out by B
      // wherever it lands first: SIGUSR1 on one replica does not stop it at the balancer.
      for (let i = 0; i < 2; i++) {
        const partNumber = `DEL-${i}`
        const made = await api(b, 'POST', '/api/items', {
          token: tokens.editor,
          body: { part_number: partNumber, item_type: 'part' },
        })
        expect(made.status).toBe(201)
        const removed = await api(nginx, 'DELETE', `/api/items/${partNumber}`, {
          token: tokens.editor,
        })
        expect(removed.status).toBe(204)
        const tried = (removed.headers.get(UPSTREAM_HEADER) ?? '').split(/,\s*/)
        expect(tried[tried.length - 1]).toBe(b.address)
        if (tried.length > 1) expect(tried).toEqual([a.address, b.address])
      }

      // Reads through nginx work wherever they land.
      for (let i = 0; i < 4; i++) {
        expect((await api(nginx, 'GET', '/api/items', { token: tokens.viewer })).status).toBe(200)
      }
      // And /ready through nginx stays 200: read-only is not unready.
      expect((await api(nginx, 'GET', '/ready')).status).toBe(200)
    })
  },
)

async function withDeadline<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: nothing within ${UNBUFFERED_DEADLINE_MS} ms (buffered?)`)),
      UNBUFFERED_DEADLINE_MS,
    )
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}
