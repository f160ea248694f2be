import { execFileSync } from 'node:child_process'
import { connect } from 'node:net'
import { constants, promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import {
  freeLoopbackPort,
  killChildren,
  probeTcp,
  runCli,
  siloEnv,
  type SiloProcess,
  spawnSilo,
} from './support/child.js'
import { chromiumMissing, launchChromium } from './support/browser.js'
import { eventually } from './support/eventually.js'
import { testDatabaseServer } from './support/postgres.js'
import { postMultipart } from './support/multipart.js'
import { api, freshDataDir, removeDataDir } from './support/server.js'
import { SseClient } from './support/sseClient.js'

/**
 * The built server as a real process (README "Modes and signals", "Probes", "Shutdown"): what an
 * operator sees on the terminal, what signals do, and what clients notice.
 */

const INSPECTOR_PORT = 9229

const dataDirs: string[] = []
const clients: SseClient[] = []
const cleanups: (() => Promise<void> | void)[] = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
  for (const client of clients.splice(0)) client.close()
  await killChildren()
  for (const dir of dataDirs.splice(0)) removeDataDir(dir)
})

function dataDir(): string {
  const dir = freshDataDir()
  dataDirs.push(dir)
  return dir
}

/** Starts the server and waits for its listening line (and, on a new database, its token). */
async function start(dir: string, extra: Record<string, string> = {}) {
  const child = spawnSilo(siloEnv(dir, extra))
  const { url, mode } = await child.listening()
  return { child, url, mode }
}

/** First start on a fresh copy of the template: returns the bootstrap admin token too. */
async function startFresh(extra: Record<string, string> = {}) {
  const dir = dataDir()
  const started = await start(dir, extra)
  const token = (await started.child.waitForLine(/^ {2}(silo_\S+)$/))[1] as string
  return { ...started, dir, token }
}

function subscribe(url: string, token: string): SseClient {
  const client = new SseClient(url, { token })
  clients.push(client)
  return client
}

/** Asks the child to stop with SIGTERM and returns how it exited. */
async function stop(child: SiloProcess) {
  child.signal('SIGTERM')
  return child.exited
}

/**
 * Polls `path` until it answers `status`; fails if the process exits first. Used where the
 * server offers no event to wait for.
 */
async function pollUntilStatus(child: SiloProcess, url: string, path: string, status: number) {
  for (let attempt = 0; attempt < 2000; attempt++) {
    let res: Awaited<ReturnType<typeof api>> | undefined
    try {
      res = await api({ url }, 'GET', path)
    } catch (err) {
      if (child.running) throw err
    }
    // A response at all means the process was still up when it answered.
    if (res?.status === status) return res
    if (!res || !child.running) {
      throw new Error(
        `silo exited (${JSON.stringify(await child.exited)}) before ${path} answered ${status}`,
      )
    }
    await delay(5)
  }
  throw new Error(`${path} never answered ${status}`)
}

async function expectNoInspector(child: SiloProcess) {
  expect(await probeTcp(INSPECTOR_PORT)).toBe('ECONNREFUSED')
  expect(child.stderr).not.toMatch(/Debugger listening/)
}

/**
 * Spawns silo with its config file as a FIFO, read by loadConfig() early in start-up: the
 * child blocks on it until `release` writes, which holds it at a known point before the
 * database is opened and long before it listens. Opening the write end returns once the child
 * has opened it.
 */
async function spawnHeldAtConfig(extra: Record<string, string> = {}) {
  const dir = dataDir()
  const fifo = join(dir, 'silo.yaml')
  execFileSync('mkfifo', [fifo])
  const child = spawnSilo(siloEnv(dir, { SILO_CONFIG: fifo, ...extra }))
  let released = false
  cleanups.push(async () => {
    if (released) return
    // Unblock a pending open of the write end if the child never opened the FIFO.
    const reader = await fsp.open(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
    await reader.close()
  })
  const writer = await Promise.race([
    fsp.open(fifo, 'w'),
    child.exited.then((exit) => {
      throw new Error(`silo exited before reading its config: ${JSON.stringify(exit)}`)
    }),
  ])
  released = true
  const release = async (content: string) => {
    try {
      await writer.writeFile(content)
    } catch (err) {
      // The child went away instead of reading on (e.g. the signal interrupted or killed it).
      const exit = await child.exited
      throw new Error(
        `writing the config failed (${(err as Error).message}); silo exited ${JSON.stringify(exit)}` +
          `\nstderr:\n${child.stderr}`,
      )
    } finally {
      await writer.close().catch(() => {})
    }
  }
  return { child, dir, release }
}

const TOKEN_BANNER = 'first start: created admin token'

describe('start-up and the token CLI', () => {
  it('prints the address and an admin token once on first start, and no token afterwards', async () => {
    const { child, url, mode, dir, token } = await startFresh()
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:[0-9]+$/)
    expect(mode).toBe('normal')
    expect(token).toMatch(/^silo_[A-Za-z0-9_-]{20,}$/)

    const modeRes = await api({ url }, 'GET', '/api/admin/mode', { token })
    expect(modeRes.status).toBe(200)
    expect(modeRes.body).toMatchObject({ mode: 'normal', read_only: false })

    expect(await stop(child)).toEqual({ code: 0, signal: null })
    // Exactly once: one banner, one token line, and the secret appears nowhere else (logs).
    expect(child.lines.filter((l) => l.includes(TOKEN_BANNER))).toHaveLength(1)
    expect(child.lines.filter((l) => /^ {2}silo_/.test(l))).toEqual([`  ${token}`])
    expect(child.lines.filter((l) => l.includes(token))).toHaveLength(1)
    expect(child.stderr).not.toContain(token)

    const second = await start(dir)
    const again = await api({ url: second.url }, 'GET', '/api/admin/mode', { token })
    expect(again.status).toBe(200)
    expect(await stop(second.child)).toEqual({ code: 0, signal: null })
    expect(second.child.stdout).not.toContain(TOKEN_BANNER)
    expect(second.child.stdout).not.toMatch(/silo_/)
  })

  it('the CLI creates an editor token while the server is stopped; on PGlite it refuses while the server runs', async () => {
    const { child, url, dir, token: adminToken } = await startFresh()
    const env = siloEnv(dir)

    if (!testDatabaseServer()) {
      // PGlite is single-process; PostgreSQL takes the CLI alongside the server.
      const refused = await runCli(['token', 'create', '--role', 'editor', '--name', 'ci'], env)
      expect(refused.code).not.toBe(0)
      expect(refused.code).not.toBeNull()
      expect(refused.stderr).toContain(`is in use by process ${child.pid}`)
      expect(refused.stdout).not.toMatch(/silo_/)
    }
    // The running server was not disturbed.
    expect((await api({ url }, 'GET', '/api/admin/mode', { token: adminToken })).status).toBe(200)

    expect(await stop(child)).toEqual({ code: 0, signal: null })

    const created = await runCli(['token', 'create', '--role', 'editor', '--name', 'ci'], env)
    expect(created.stderr).toBe('')
    expect(created.code).toBe(0)
    expect(created.stdout).toMatch(/^created editor token #[0-9]+ "ci"/)
    const editorToken = /^(silo_\S+)$/m.exec(created.stdout)?.[1] as string
    expect(editorToken).toBeDefined()

    const next = await start(dir)
    expect(next.child.stdout).not.toContain(TOKEN_BANNER)
    const item = await api({ url: next.url }, 'POST', '/api/items', {
      token: editorToken,
      body: { part_number: 'CLI-1', description: 'made with a CLI token', item_type: 'part' },
    })
    expect(item.status).toBe(201)
    // An editor, not an admin.
    const admin = await api({ url: next.url }, 'GET', '/api/admin/mode', { token: editorToken })
    expect(admin.status).toBe(403)
    expect(await stop(next.child)).toEqual({ code: 0, signal: null })
  })
})

describe('SIGUSR1 toggles read-only', () => {
  it('flips the mode both ways, tells SSE clients, and never opens the debugger', async () => {
    expect(await probeTcp(INSPECTOR_PORT), 'something already listens on 9229').toBe('ECONNREFUSED')
    const { child, url, token } = await startFresh()
    const sse = subscribe(url, token)
    await sse.waitForEvent('server.state', (e) => e.data.mode === 'normal')

    child.signal('SIGUSR1')
    const readOnly = await sse.waitForEvent('server.state', (e) => e.data.mode === 'read-only')
    expect(readOnly.data).toEqual({ mode: 'read-only', previous: 'normal', reason: 'SIGUSR1' })
    expect(readOnly.id).toBeUndefined()

    const refused = await api({ url }, 'POST', '/api/items', {
      token,
      body: { part_number: 'USR1-1', item_type: 'part' },
    })
    expect(refused.status).toBe(503)
    expect(refused.body).toMatchObject({ error: 'server_read_only' })
    expect(refused.headers.get('retry-after')).toMatch(/^[0-9]+$/)
    expect((await api({ url }, 'GET', '/api/items', { token })).status).toBe(200)
    const health = await api({ url }, 'GET', '/health')
    expect(health.status).toBe(200)
    expect(health.body).toEqual({ status: 'ok', mode: 'read-only' })
    const ready = await api({ url }, 'GET', '/ready')
    expect(ready.status).toBe(200)
    expect(ready.body).toMatchObject({ status: 'ready', mode: 'read-only', sse_clients: 1 })

    child.signal('SIGUSR1')
    const normal = await sse.waitForEvent(
      'server.state',
      (e) => e.data.mode === 'normal' && !!e.data.previous,
    )
    expect(normal.data).toEqual({ mode: 'normal', previous: 'read-only', reason: 'SIGUSR1' })
    const created = await api({ url }, 'POST', '/api/items', {
      token,
      body: { part_number: 'USR1-1', item_type: 'part' },
    })
    expect(created.status).toBe(201)
    await sse.waitForEvent('item.created', (e) => e.data.part_number === 'USR1-1')
    expect((await api({ url }, 'GET', '/health')).body).toEqual({ status: 'ok', mode: 'normal' })

    // Exactly two transitions, one log line each. The stream can beat stdout to the test, so the
    // second line is awaited before counting.
    expect(sse.events.filter((e) => e.type === 'server.state')).toHaveLength(3)
    await child.waitForLog(/server mode read-only -> normal/)
    expect(child.logs.filter((l) => /^server mode /.test(String(l.msg)))).toHaveLength(2)

    await expectNoInspector(child)
    expect(child.running).toBe(true)
    expect(await stop(child)).toEqual({ code: 0, signal: null })
  })

  it('a SIGUSR1 that arrives during start-up is applied and does not open the debugger', async () => {
    expect(await probeTcp(INSPECTOR_PORT), 'something already listens on 9229').toBe('ECONNREFUSED')
    const held = await spawnHeldAtConfig()
    held.child.signal('SIGUSR1')
    await held.release('log:\n  level: info\n')
    const { child } = held

    const { url, mode } = await child.listening()
    expect(mode).toBe('read-only')
    const token = (await child.waitForLine(/^ {2}(silo_\S+)$/))[1] as string
    expect((await api({ url }, 'GET', '/health')).body).toEqual({ status: 'ok', mode: 'read-only' })
    const sse = subscribe(url, token)
    const first = await sse.waitForEvent('server.state')
    expect(first.data).toEqual({ mode: 'read-only' })
    const refused = await api({ url }, 'POST', '/api/items', {
      token,
      body: { part_number: 'EARLY-1', item_type: 'part' },
    })
    expect(refused.status).toBe(503)
    expect(refused.body).toMatchObject({ error: 'server_read_only' })

    await expectNoInspector(child)
    expect(child.running).toBe(true)
    expect(await stop(child)).toEqual({ code: 0, signal: null })
  })
})

describe('SIGTERM drains and exits', () => {
  it('turns readiness off, refuses new work, ends SSE streams, then exits 0', async () => {
    const { child, url, token } = await startFresh({
      SILO_SERVER_DRAIN_DELAY: '3s',
      SILO_SERVER_SHUTDOWN_TIMEOUT: '20s',
    })
    const sse = subscribe(url, token)
    await sse.waitForEvent('server.state', (e) => e.data.mode === 'normal')
    expect((await api({ url }, 'GET', '/ready')).status).toBe(200)

    child.signal('SIGTERM')
    const ready = await pollUntilStatus(child, url, '/ready', 503)
    expect(ready.body).toMatchObject({ status: 'not_ready', shutting_down: true })

    // Still within the drain (the process is alive: it answered /ready a moment ago).
    const [health, write, fresh] = await Promise.all([
      api({ url }, 'GET', '/health'),
      api({ url }, 'POST', '/api/items', {
        token,
        body: { part_number: 'TERM-1', item_type: 'part' },
      }),
      fetch(`${url}/api/events`, { headers: { authorization: `Bearer ${token}` } }).then(
        async (res) => ({ res, body: await res.text() }),
      ),
    ])
    expect(health.status).toBe(200)
    expect(health.body).toEqual({ status: 'ok', mode: 'shutting-down' })
    expect(ready.body).toMatchObject({ mode: 'shutting-down' })
    expect(write.status).toBe(503)
    expect(write.body).toMatchObject({ error: 'shutting_down' })
    // A new stream gets 200, a retry hint and an immediate, clean end (the body completed).
    expect(fresh.res.status).toBe(200)
    expect(fresh.res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    expect(fresh.body).toMatch(/^retry: [0-9]+\n\n$/)

    const last = await sse.waitForEvent('server.state', (e) => e.data.mode === 'shutting-down')
    expect(last.data).toMatchObject({ mode: 'shutting-down' })
    await sse.ended

    expect(await child.exited).toEqual({ code: 0, signal: null })
    // And the last log line says the drain is over, and how long it took
    const done = child.logs.filter((l) => /^shutdown complete in [0-9]+ ms$/.test(String(l.msg)))
    expect(done).toHaveLength(1)
    expect(done[0]?.duration_ms).toBeGreaterThanOrEqual(3000)
  })

  it('exits 0 on SIGTERM right after whoever read its stdout went away', async () => {
    // Given a running server whose stdout reader has just gone (`npm start | head -1`)
    const { child } = await startFresh({ SILO_SERVER_SHUTDOWN_TIMEOUT: '5s' })
    child.closeStdout()
    // When it is asked to stop before it has noticed (its drain lines are the first to fail)
    child.signal('SIGTERM')
    // Then it exits cleanly instead of spinning on the dead pipe (which outlasted the timeout)
    const hung = delay(20_000).then(() => 'still running 20 s after SIGTERM')
    expect(await Promise.race([child.exited, hung]), child.stderr).toEqual({
      code: 0,
      signal: null,
    })
  })

  it('serves on when its stdout is closed before it prints its first line', async () => {
    // Given a server held before start-up, whose stdout reader goes away meanwhile
    const port = await freeLoopbackPort()
    const held = await spawnHeldAtConfig({ SILO_SERVER_PORT: String(port) })
    held.child.closeStdout()
    // When it starts, on a port the test knows (it can no longer print its address)
    await held.release('')
    await eventually(
      () =>
        fsp.stat(join(held.dir, 'silo.pid')).then(
          () => true,
          () => false,
        ),
      'the pid file, written once listening',
    )
    // Then its banner lines are dropped, and it answers as usual
    const url = `http://127.0.0.1:${port}`
    expect((await api({ url }, 'GET', '/health')).body).toEqual({ status: 'ok', mode: 'normal' })
    expect(held.child.running).toBe(true)
    expect(await stop(held.child)).toEqual({ code: 0, signal: null })
  })

  it.skipIf(chromiumMissing)(
    'exits 0 at once with a real Chromium EventSource connected, whatever events.retry is',
    async () => {
      // Given a server whose clients are told to wait a minute before reconnecting, longer than
      // the grace period, and a browser page holding its event stream open
      const { child, url, token } = await startFresh({
        SILO_EVENTS_RETRY: '60s',
        SILO_SERVER_SHUTDOWN_TIMEOUT: '15s',
      })
      const browser = await launchChromium()
      cleanups.push(() => browser.close())
      const page = await browser.newPage()
      await page.goto(`${url}/health`)
      await page.evaluate(
        (t) =>
          new Promise<void>((resolve) => {
            const source = new EventSource(`/api/events?token=${t}`)
            const seen: string[] = []
            Object.assign(globalThis, { seen })
            source.addEventListener('server.state', (e) => {
              seen.push(JSON.parse((e as unknown as { data: string }).data).mode)
              resolve()
            })
          }),
        token,
      )
      // When the server is asked to stop
      const asked = performance.now()
      child.signal('SIGTERM')
      // Then it exits 0 without waiting for the browser to reconnect (which ended the process
      // by the grace period's timer, exit 1), after telling the page it was shutting down
      expect(await child.exited).toEqual({ code: 0, signal: null })
      const tookMs = performance.now() - asked
      expect(await page.evaluate(() => (globalThis as unknown as { seen: string[] }).seen)).toEqual(
        ['normal', 'shutting-down'],
      )
      expect(tookMs).toBeLessThan(10_000)
    },
  )

  it(
    'exits 0 with 1,000 SSE clients connected, ending every stream',
    { timeout: 180_000 },
    async () => {
      // One token holds every stream here, past the default events.max_streams_per_token.
      const { child, url, token } = await startFresh({
        SILO_SERVER_SHUTDOWN_TIMEOUT: '20s',
        SILO_EVENTS_MAX_STREAMS_PER_TOKEN: '1000',
      })
      const all: SseClient[] = []
      for (let batch = 0; batch < 10; batch++) {
        const opened = Array.from({ length: 100 }, () => subscribe(url, token))
        await Promise.all(opened.map((c) => c.waitForEvent('server.state')))
        all.push(...opened)
      }
      const ready = await api({ url }, 'GET', '/ready')
      expect(ready.body).toMatchObject({ status: 'ready', sse_clients: 1000 })

      child.signal('SIGTERM')
      const exit = await child.exited
      expect(exit, child.stderr).toEqual({ code: 0, signal: null })
      await Promise.all(all.map((c) => c.ended))
      expect(all.every((c) => c.closed)).toBe(true)
      const told = all.filter((c) =>
        c.events.some((e) => e.type === 'server.state' && e.data.mode === 'shutting-down'),
      )
      expect(told).toHaveLength(1000)
    },
  )

  it('a SIGTERM during start-up stops cleanly before listening and leaves the data reusable', async () => {
    const held = await spawnHeldAtConfig()
    held.child.signal('SIGTERM')
    await held.release('log:\n  level: info\n')
    expect(await held.child.exited).toEqual({ code: 0, signal: null })
    expect(held.child.stdout).not.toMatch(/silo listening on/)
    // The database lock was released: the same data opens again at once.
    const again = await start(held.dir)
    expect(again.mode).toBe('normal')
    expect(await stop(again.child)).toEqual({ code: 0, signal: null })
  })

  it('a second SIGTERM during a long drain exits at once with a non-zero code', async () => {
    const { child, url } = await startFresh({
      SILO_SERVER_DRAIN_DELAY: '10m',
      SILO_SERVER_SHUTDOWN_TIMEOUT: '20m',
    })
    child.signal('SIGTERM')
    // /ready at 503 means the first signal is being handled (the drain has begun).
    await pollUntilStatus(child, url, '/ready', 503)
    child.signal('SIGTERM')
    const exit = await child.exited
    expect(exit.signal).toBeNull()
    expect(exit.code).not.toBeNull()
    expect(exit.code).not.toBe(0)
  })
})

describe('configured read-only', () => {
  it('SILO_SERVER_READ_ONLY=true starts read-only', async () => {
    const { child, url, mode, token } = await startFresh({ SILO_SERVER_READ_ONLY: 'true' })
    expect(mode).toBe('read-only')
    const sse = subscribe(url, token)
    const first = await sse.waitForEvent('server.state')
    expect(first).toEqual({ type: 'server.state', data: { mode: 'read-only' } })
    const refused = await api({ url }, 'POST', '/api/items', {
      token,
      body: { part_number: 'CFG-1', item_type: 'part' },
    })
    expect(refused.status).toBe(503)
    expect(refused.body).toMatchObject({ error: 'server_read_only' })
    expect(await stop(child)).toEqual({ code: 0, signal: null })
  })
})

describe('operators find the server by its pid file', () => {
  it('writes the pid file once listening, names the pid in its first line, removes it at exit', async () => {
    // Given a server started on a fresh data folder
    const dir = dataDir()
    const pidFile = join(dir, 'silo.pid')
    const child = spawnSilo(siloEnv(dir))
    // When it listens
    const { pid } = await child.listening()
    // Then its first line and the pid file name the process
    expect(pid).toBe(child.pid)
    expect(await fsp.readFile(pidFile, 'utf8')).toBe(`${child.pid}\n`)
    // And the file is gone once it has stopped
    expect(await stop(child)).toEqual({ code: 0, signal: null })
    await expect(fsp.stat(pidFile)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('under npm start, SIGUSR1 sent through the pid file toggles read-only and npm lives on', async () => {
    // Given the server run as the README says, below npm and a shell
    const dir = dataDir()
    const npm = spawnSilo(siloEnv(dir), { viaNpm: true })
    const { url, pid } = await npm.listening()
    cleanups.push(() => {
      if (isRunning(pid)) process.kill(pid, 'SIGKILL')
    })
    const token = (await npm.waitForLine(/^ {2}(silo_\S+)$/))[1] as string
    const serverPid = Number((await fsp.readFile(join(dir, 'silo.pid'), 'utf8')).trim())
    expect(serverPid).toBe(pid)
    expect(serverPid).not.toBe(npm.pid)
    const sse = subscribe(url, token)
    await sse.waitForEvent('server.state')

    // When SIGUSR1 goes to the pid in the file, twice
    process.kill(serverPid, 'SIGUSR1')
    await sse.waitForEvent('server.state', (e) => e.data.mode === 'read-only')
    process.kill(serverPid, 'SIGUSR1')
    await sse.waitForEvent('server.state', (e) => e.data.previous === 'read-only')

    // Then the server switched both ways, and npm (which dies of a SIGUSR1 itself) still runs
    expect((await api({ url }, 'GET', '/health')).body).toEqual({ status: 'ok', mode: 'normal' })
    expect(npm.running).toBe(true)
    // And SIGTERM through the same file stops the server, and npm with it, cleanly
    process.kill(serverPid, 'SIGTERM')
    expect(await npm.exited).toEqual({ code: 0, signal: null })
    expect(isRunning(serverPid)).toBe(false)
  })
})

describe('memory under npm start', () => {
  it("keeps V8's young generation to the 2 MiB semi-spaces npm start asks for", async () => {
    // Given the server as npm start runs it, after some hundreds of requests
    const npm = spawnSilo(siloEnv(dataDir()), { viaNpm: true })
    const { url, pid } = await npm.listening()
    cleanups.push(() => {
      if (isRunning(pid)) process.kill(pid, 'SIGKILL')
    })
    const token = (await npm.waitForLine(/^ {2}(silo_\S+)$/))[1] as string
    for (let i = 0; i < 300; i++) await api({ url }, 'GET', '/api/items', { token })
    // When its metrics are read
    const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } })
    const newSpace = /^silo_nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)$/m.exec(
      await res.text(),
    )?.[1]
    // Then the new space holds two 2 MiB semi-spaces at most, not node's default 2 × 16 MiB
    expect(Number(newSpace)).toBeGreaterThan(0)
    expect(Number(newSpace)).toBeLessThanOrEqual(4 * 1024 * 1024)
  })
})

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('configuration mistakes stop the start', () => {
  it('refuses an unknown SILO_* variable with exit 2, naming the closest setting', async () => {
    // Given a misspelt port variable
    const child = spawnSilo(siloEnv(dataDir(), { SILO_SERVER_PORTT: '8301' }))
    // When the server starts, then it refuses, and says what was meant
    expect(await child.exited).toEqual({ code: 2, signal: null })
    expect(child.stderr).toContain(
      'SILO_SERVER_PORTT is not a setting; did you mean SILO_SERVER_PORT?',
    )
    expect(child.stdout).not.toMatch(/silo listening on/)
  })
})

describe('an upload cut short by kill -9', () => {
  it('leaves no file behind after a restart and uses up no revision number', async () => {
    // Given an item with two revisions, and an upload under way
    const { child, url, dir, token } = await startFresh()
    const upload = (name: string) =>
      postMultipart(`${url}/api/items/KILL-1/revisions`, token, [
        { name: 'file', filename: name, contentType: 'model/step', data: Buffer.from(name) },
      ])
    await api({ url }, 'POST', '/api/items', {
      token,
      body: { part_number: 'KILL-1', item_type: 'part' },
    })
    for (const name of ['one.step', 'two.step']) expect((await upload(name)).status).toBe(201)
    const boundary = 'cut-short'
    const socket = connect(Number(new URL(url).port), '127.0.0.1')
    cleanups.push(() => void socket.destroy())
    socket.on('error', () => {})
    socket.write(
      `POST /api/items/KILL-1/revisions HTTP/1.1\r\nHost: silo\r\nAuthorization: Bearer ${token}\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 100000000\r\n\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.step"\r\n` +
        `Content-Type: model/step\r\n\r\n${'x'.repeat(256 * 1024)}`,
    )
    const files = join(dir, 'files')
    const partial = () =>
      fsp
        .readdir(files, { recursive: true })
        .then((names) => names.some((n) => n.includes('.upload-')))
        .catch(() => false)
    await eventually(partial, 'the upload to have started writing its file')

    // When the server is killed in the middle of it, and started again on the same data
    child.signal('SIGKILL')
    expect((await child.exited).signal).toBe('SIGKILL')
    const restarted = await start(dir)

    // Then the next upload is revision 3, and no part of the cut-short upload is left
    const next = await postMultipart(`${restarted.url}/api/items/KILL-1/revisions`, token, [
      { name: 'file', filename: 'three.step', contentType: 'model/step', data: Buffer.from('3') },
    ])
    expect(next.status).toBe(201)
    expect(next.body.revision_number).toBe(3)
    const left = (await fsp.readdir(files, { recursive: true })).sort()
    // On an embedded database no other process can be uploading, so the restart took it all;
    // on PostgreSQL another replica might be, and what is younger than any upload stays.
    if (!testDatabaseServer()) {
      expect(left.filter((n) => n.includes('.upload-') || n.startsWith('uploads/'))).toEqual([])
    }
    expect(left.filter((n) => n.startsWith('items/'))).toEqual([
      'items/KILL-1',
      'items/KILL-1/rev',
      'items/KILL-1/rev/1',
      'items/KILL-1/rev/1/one.step',
      'items/KILL-1/rev/2',
      'items/KILL-1/rev/2/two.step',
      'items/KILL-1/rev/3',
      'items/KILL-1/rev/3/three.step',
    ])
    expect(await stop(restarted.child)).toEqual({ code: 0, signal: null })
  })
})
