/**
 * The floor under the write path: the database alone doing what one create needs, with the
 * same driver and settings as silo (dist/db/openDatabase.js) in this process, as many writers
 * at once as the HTTP phases use. No HTTP, no auth, no JSON schema: what is left of silo's
 * time per create above this is its own.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

interface Queryable {
  query(sql: string, params?: unknown[]): Promise<unknown>
}
interface Database extends Queryable {
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  close(): Promise<void>
}

export interface FloorResult {
  /** An item and its event, BEGIN … COMMIT with one statement each (silo before issue 14). */
  transactionPerSecond: number
  /** The item and its event in one statement, no explicit transaction. */
  statementPerSecond: number
}

const ITEM = `INSERT INTO items (part_number, description, item_type, properties, created_by, updated_by)
  VALUES ($1, 'floor', 'part', '{}', '{"token_id":1,"name":"floor"}', '{"token_id":1,"name":"floor"}')`
const EVENT = `INSERT INTO events (type, part_number, data) VALUES ('item.created', $1, $2)`

async function run(n: number, writers: number, one: (i: number) => Promise<void>): Promise<number> {
  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (next < n) await one(next++)
    }),
  )
  return n / ((performance.now() - started) / 1000)
}

export async function measureWriteFloor(
  root: string,
  options: { items: number; writers: number; databaseUrl?: string },
): Promise<FloorResult> {
  const dist = (file: string) => pathToFileURL(join(root, 'dist', 'db', file)).href
  const { openDatabase } = (await import(dist('openDatabase.js'))) as {
    openDatabase: (config: unknown, onError: () => void) => Promise<Database>
  }
  const { migrate } = (await import(dist('migrations.js'))) as {
    migrate: (db: Database) => Promise<void>
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'silo-bench-floor-'))
  const db = await openDatabase(
    {
      url: options.databaseUrl ?? '',
      data_dir: join(dataDir, 'db'),
      shared_buffers: '16MB',
      pool_size: 10,
      connect_timeout: 5000,
    },
    () => {},
  )
  try {
    await migrate(db)
    const data = (pn: string) => JSON.stringify({ part_number: pn, description: 'floor' })
    const warm = (i: number) => `F0-${i}`
    await run(200, options.writers, async (i) => {
      await db.query(ITEM, [warm(i)])
    })
    const transactionPerSecond = await run(options.items, options.writers, async (i) => {
      const pn = `F1-${i}`
      await db.transaction(async (tx) => {
        await tx.query(ITEM, [pn])
        await tx.query('SELECT pg_advisory_xact_lock(5111)')
        await tx.query(EVENT, [pn, data(pn)])
      })
    })
    const statementPerSecond = await run(options.items, options.writers, async (i) => {
      const pn = `F2-${i}`
      await db.query(
        `WITH item AS (${ITEM} RETURNING part_number),
              ordered AS (SELECT pg_advisory_xact_lock(5111) AS locked)
         INSERT INTO events (type, part_number, data)
         SELECT 'item.created', item.part_number, $2 FROM item, ordered`,
        [pn, data(pn)],
      )
    })
    return { transactionPerSecond, statementPerSecond }
  } finally {
    await db.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
}
