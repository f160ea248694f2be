import { mkdirSync, openSync, closeSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
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

export async function openPglite(dataDir: string): Promise<Database> {
  mkdirSync(dataDir, { recursive: true })
  const release = acquireLock(dataDir)
  let pg: PGlite
  try {
    pg = await PGlite.create(dataDir)
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
