import { afterEach, describe, expect, it } from 'vitest'
import type { Queryable } from '../src/db/database.js'
import { itemHistory } from '../src/domain/history.js'
import { databaseEventSource } from '../src/events/eventLog.js'
import { startServer, type TestServer } from './support/server.js'

/**
 * Paging through the event log costs a page, not the log (README "The event stream"): a stream
 * catching up after a large import, and the history of a much-changed item, read one page per
 * query. Checked on the plan of the very query each sends, in the database the suite runs on.
 */

let server: TestServer | undefined
afterEach(async () => {
  await server?.close()
  server = undefined
})

const ROWS = 3000

/** Runs `read` against the server's database and returns the SQL and parameters it sent. */
async function queriesOf(
  db: Queryable,
  read: (db: Queryable) => Promise<unknown>,
): Promise<{ sql: string; params: unknown[] }[]> {
  const sent: { sql: string; params: unknown[] }[] = []
  await read({
    query: (sql, params) => {
      sent.push({ sql, params: params ?? [] })
      return db.query(sql, params)
    },
  })
  return sent
}

interface PlanNode {
  'Node Type': string
  'Actual Rows': number
  Plans?: PlanNode[]
}

/** The most rows any step of the query's executed plan handled. */
async function mostRowsTouched(db: Queryable, sql: string, params: unknown[]): Promise<number> {
  const { rows } = await db.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
    `EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`,
    params,
  )
  const walk = (node: PlanNode): number =>
    Math.max(node['Actual Rows'], ...(node.Plans ?? []).map(walk))
  return walk((rows[0] as { 'QUERY PLAN': [{ Plan: PlanNode }] })['QUERY PLAN'][0].Plan)
}

async function fillLog(db: Queryable, partNumber: (g: string) => string): Promise<void> {
  await db.query(
    `INSERT INTO events (type, part_number, data)
     SELECT 'item.updated', ${partNumber('g')}, jsonb_build_object('part_number', ${partNumber('g')})
     FROM generate_series(1, $1::int) g`,
    [ROWS],
  )
  await db.query('ANALYZE events')
}

describe('the event log', () => {
  it('reads a page after a cursor without touching the events up to the head', async () => {
    server = await startServer()
    const db = server.app.db
    await fillLog(db, (g) => `'P-' || ${g}`)
    const [read] = await queriesOf(db, (q) => databaseEventSource(q).readAfter(10, 1e9, 50))
    expect(read).toBeDefined()
    const { sql, params } = read as { sql: string; params: unknown[] }
    expect(await mostRowsTouched(db, sql, params)).toBeLessThanOrEqual(50)
  })

  it("reads a page of an item's history without touching the rest of its events", async () => {
    server = await startServer()
    const db = server.app.db
    await fillLog(db, () => `'P-1'`)
    const sent = await queriesOf(db, (q) => itemHistory(q, 'P-1', { limit: 20 }))
    const { sql, params } = sent[0] as { sql: string; params: unknown[] }
    expect(await mostRowsTouched(db, sql, params)).toBeLessThanOrEqual(21)
  })
})
