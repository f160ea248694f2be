import { execFile, execFileSync } from 'node:child_process'
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freeLoopbackPort } from './child.js'

/**
 * A throwaway PostgreSQL cluster of the test's own, on a free loopback port in a temp folder, that
 * the test may stop and start at will (the shared SILO_TEST_DATABASE_URL server must never be
 * stopped: other test files use it at the same time).
 *
 * initdb refuses to run as root, so under root every server binary runs as the `postgres` OS
 * user through `runuser`, and the folder belongs to that user.
 */

const run = promisify(execFile)

const SUPERUSER = 'silo'
const SERVER_USER = 'postgres'

export type PostgresBinaries =
  | { available: true; bindir: string; runAs: { uid: number; gid: number } | null }
  | { available: false; reason: string }

function hasServerBinaries(dir: string): boolean {
  return ['initdb', 'pg_ctl', 'postgres'].every((name) => existsSync(join(dir, name)))
}

function bindirCandidates(): string[] {
  const found: string[] = []
  try {
    found.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim())
  } catch {
    // pg_config is not installed (it comes with libpq-dev, not always with the server)
  }
  try {
    // Debian keeps one folder per major version; take the newest.
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^[0-9]+$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
    for (const version of versions) found.push(`/usr/lib/postgresql/${version}/bin`)
  } catch {
    // no Debian server package
  }
  return found
}

function serverUser(): { uid: number; gid: number } | string {
  if (!existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser')) {
    return 'running as root, and runuser (needed to run initdb as a non-root user) is missing'
  }
  try {
    const uid = Number(execFileSync('id', ['-u', SERVER_USER], { encoding: 'utf8' }).trim())
    const gid = Number(execFileSync('id', ['-g', SERVER_USER], { encoding: 'utf8' }).trim())
    return { uid, gid }
  } catch {
    return `running as root, and there is no "${SERVER_USER}" OS user to run initdb as`
  }
}

/** Where initdb and pg_ctl live, or why a cluster of our own cannot be made here. */
export function findPostgresBinaries(): PostgresBinaries {
  const bindir = bindirCandidates().find(hasServerBinaries)
  if (!bindir) {
    return {
      available: false,
      reason:
        'no PostgreSQL server binaries (initdb, pg_ctl, postgres) via `pg_config --bindir` ' +
        "or /usr/lib/postgresql/*/bin; install Debian's postgresql package (.ci/run does)",
    }
  }
  if (process.getuid?.() !== 0) return { available: true, bindir, runAs: null }
  const user = serverUser()
  if (typeof user === 'string') return { available: false, reason: user }
  return { available: true, bindir, runAs: user }
}

export interface PgCluster {
  readonly port: number
  /** `postgres://silo@127.0.0.1:PORT` (trust auth; `silo` is the superuser). */
  readonly url: string
  readonly running: boolean
  /** The URL of one database in this cluster. */
  databaseUrl(name: string): string
  /** Runs SQL with psql (ON_ERROR_STOP, unaligned, tuples only) and returns its output. */
  psql(sql: string, database?: string): Promise<string>
  /** `pg_ctl stop -m fast`: sessions are terminated; returns once the server is gone. */
  stop(): Promise<void>
  /** `pg_ctl start` on the same port and data; returns once it accepts connections. */
  start(): Promise<void>
  /** Stops (if running) and removes the folder. */
  close(): Promise<void>
}

/** initdb + pg_ctl start on a free loopback port; throws if the binaries are missing. */
export async function startPgCluster(): Promise<PgCluster> {
  const binaries = findPostgresBinaries()
  if (!binaries.available) throw new Error(binaries.reason)
  const { bindir, runAs } = binaries
  const dir = mkdtempSync(join(tmpdir(), 'silo-pgcluster-'))
  const data = join(dir, 'data')
  const logFile = join(dir, 'server.log')
  if (runAs) chownSync(dir, runAs.uid, runAs.gid)

  // PG* variables of the caller (PGDATA, PGPORT, ...) must not redirect these commands.
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('PG')) env[key] = value
  }
  const server = (binary: string, args: string[]) => {
    const command = join(bindir, binary)
    const [file, argv] = runAs
      ? ['runuser', ['-u', SERVER_USER, '--', command, ...args]]
      : [command, args]
    // cwd: the server user may not be allowed into the test's working directory.
    return run(file, argv, { cwd: dir, env, encoding: 'utf8' }).catch((err: Error) => {
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-4000) : ''
      throw new Error(`${binary} ${args.join(' ')} failed: ${err.message}\n${log}`)
    })
  }

  let port = 0
  let running = false
  const pgCtl = (action: 'start' | 'stop') =>
    action === 'start'
      ? server('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '60', 'start'])
      : server('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop'])

  // A test run that dies without close() must not leave a server behind.
  const onExit = () => {
    if (!running) return
    try {
      const args = ['-D', data, '-m', 'immediate', 'stop']
      const command = join(bindir, 'pg_ctl')
      if (runAs) execFileSync('runuser', ['-u', SERVER_USER, '--', command, ...args], { env })
      else execFileSync(command, args, { env })
    } catch {
      // nothing more to do while exiting
    }
  }

  try {
    await server('initdb', [
      '-D',
      data,
      '-U',
      SUPERUSER,
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
    ])
    // The port is chosen below the ephemeral range, so that nothing else can be handed it while
    // the cluster is stopped; another process may still grab it first, hence the retries.
    for (let attempt = 1; ; attempt++) {
      port = await freeLoopbackPort()
      appendFileSync(
        join(data, 'postgresql.conf'),
        [
          '',
          `port = ${port}`,
          "listen_addresses = '127.0.0.1'",
          `unix_socket_directories = '${dir}'`,
          'fsync = off',
          'synchronous_commit = off',
          'full_page_writes = off',
          '',
        ].join('\n'),
      )
      try {
        await pgCtl('start')
        running = true
        break
      } catch (err) {
        const bindFailed = /could not bind|Address already in use/i.test((err as Error).message)
        if (!bindFailed || attempt >= 5) throw err
      }
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  process.on('exit', onExit)

  const url = `postgres://${SUPERUSER}@127.0.0.1:${port}`
  return {
    port,
    url,
    get running() {
      return running
    },
    databaseUrl: (name) => `${url}/${name}`,
    async psql(sql, database = 'postgres') {
      const { stdout } = await run(
        'psql',
        [`${url}/${database}`, '-v', 'ON_ERROR_STOP=1', '-X', '-Atqc', sql],
        { env, encoding: 'utf8' },
      )
      return stdout
    },
    async stop() {
      if (!running) return
      await pgCtl('stop')
      running = false
    },
    async start() {
      if (running) throw new Error('the cluster is already running')
      await pgCtl('start')
      running = true
    },
    async close() {
      try {
        if (running) await pgCtl('stop')
        running = false
      } finally {
        process.off('exit', onExit)
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
