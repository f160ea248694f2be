import { spawn } from 'node:child_process'
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import { dirname, extname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PGlite } from '@electric-sql/pglite'
import type { Database, Queryable } from './database.js'

export class DatabaseLockedError extends Error {}

/**
 * PGlite is a single-process database: two processes opening the same folder corrupt it. A lock
 * file beside the folder, holding the owner's pid, keeps a second server or the CLI out while a
 * live process has it, and is taken over when its owner is gone.
 */
function acquireLock(dataDir: string): () => void {
  const lockPath = join(dirname(resolve(dataDir)), `.${basenameOf(dataDir)}.lock`)
  mkdirSync(dirname(lockPath), { recursive: true })
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx')
      writeSync(fd, String(process.pid))
      closeSync(fd)
      return () => {
        try {
          unlinkSync(lockPath)
        } catch {
          // already gone: nothing to release
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = Number(readFileSync(lockPath, 'utf8'))
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new DatabaseLockedError(
          `database ${dataDir} is in use by process ${owner}; stop it or use its admin API`,
        )
      }
      unlinkSync(lockPath)
    }
  }
  throw new DatabaseLockedError(`cannot lock database ${dataDir}`)
}

function basenameOf(path: string): string {
  return resolve(path).split(/[\\/]/).pop() ?? 'db'
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

// Tests run the TypeScript sources, production the built dist/: the initdb script is the file
// beside this one with the same extension, and a .ts one is loaded through tsx (a devDependency).
const here = fileURLToPath(import.meta.url)
const INIT_SCRIPT = fileURLToPath(new URL(`./pgliteInit${extname(here)}`, import.meta.url))
const INIT_EXEC_ARGV = extname(here) === '.ts' ? ['--import', 'tsx'] : []

function runInitdb(dataDir: string): Promise<void> {
  return new Promise((done, fail) => {
    // Baseline WebAssembly code only, as the server runs PGlite (main.ts): initdb peaks some
    // 110 MiB lower and finishes sooner without V8's optimising re-compiles.
    const args = [...INIT_EXEC_ARGV, '--liftoff-only', INIT_SCRIPT, dataDir]
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000)
    })
    child.once('error', fail)
    child.once('close', (code, signal) => {
      if (code === 0) done()
      else
        fail(new Error(`creating the database in ${dataDir} failed (${signal ?? code}): ${stderr}`))
    })
  })
}

/**
 * A folder without a database gets one from a child process: PGlite runs initdb in a second
 * WebAssembly instance whose memory (some 500 MiB at its peak) a process never gets back, so a
 * server that ran it itself would keep it for good (docs/BENCHMARKS.md, "Memory and start").
 * It is made beside the data folder and moved in when complete, so a start killed during initdb
 * leaves nothing the next start would take for a database.
 */
async function createIfMissing(dataDir: string): Promise<void> {
  if (existsSync(join(dataDir, 'PG_VERSION'))) return
  const staging = `${resolve(dataDir)}.initdb`
  rmSync(staging, { recursive: true, force: true })
  await runInitdb(staging)
  try {
    // Replaces the empty folder mkdir (or an image) made.
    renameSync(staging, dataDir)
  } catch {
    // A mount point, or a folder holding something else: copy into it instead.
    cpSync(staging, dataDir, { recursive: true })
    rmSync(staging, { recursive: true, force: true })
  }
}

export interface PgliteOptions {
  /** PostgreSQL's shared_buffers (`16MB`); absent, what the folder's postgresql.conf says. */
  sharedBuffers?: string
}

export async function openPglite(dataDir: string, options: PgliteOptions = {}): Promise<Database> {
  mkdirSync(dataDir, { recursive: true })
  const release = acquireLock(dataDir)
  let pg: PGlite
  try {
    await createIfMissing(dataDir)
    const settings = options.sharedBuffers ? ['-c', `shared_buffers=${options.sharedBuffers}`] : []
    pg = await PGlite.create(dataDir, { startParams: [...PGlite.defaultStartParams, ...settings] })
  } catch (err) {
    release()
    throw err
  }
  const asQueryable = (q: Pick<PGlite, 'query'>): Queryable => ({
    query: async <T>(sql: string, params?: unknown[]) => {
      const result = await q.query<T>(sql, params as unknown[])
      return { rows: result.rows }
    },
  })
  return {
    kind: 'pglite',
    ...asQueryable(pg),
    transaction: (fn) => pg.transaction((tx) => fn(asQueryable(tx))),
    ping: async () => {
      await pg.query('SELECT 1')
    },
    close: async () => {
      try {
        await pg.close()
      } finally {
        release()
      }
    },
  }
}
