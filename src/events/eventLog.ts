import type { Database, Queryable } from '../db/database.js'
import type { NewEvent, StoredEventType } from './catalogue.js'

export type { NewEvent } from './catalogue.js'

/**
 * One stored event: a row of the `events` table. Its data is what the catalogue said when it
 * was written; rows written by older versions may lack fields added since.
 */
export interface StoredEvent {
  id: number
  type: StoredEventType
  part_number: string | null
  data: Record<string, unknown>
}

export interface LogBounds {
  /** Highest committed id, 0 when the log has never held an event. */
  latest: number
  /** Highest id removed by retention: ids at or below it cannot be replayed. */
  prunedThrough: number
}

/** What the broker needs from the log; in-memory fakes implement it in unit tests. */
export interface EventSource {
  readAfter(afterId: number, upToId: number, limit: number): Promise<StoredEvent[]>
  bounds(): Promise<LogBounds>
}

// Any constant shared by every writer; it serialises event inserts until commit so that ids
// become visible in the order they were taken, also across PostgreSQL connections.
const EVENT_ORDER_LOCK = 5111

/** The NOTIFY channel that tells every process new events have committed. */
export const EVENTS_CHANNEL = 'silo_events'

/**
 * The SQL that appends events as part of a bigger statement: CTE members (after a `WITH`, the
 * last of them `appended`, one row whose `events` column holds the stored rows as JSON) taking
 * the event-order lock, inserting, and sending the NOTIFY that wakes every replica's broker.
 * `at` is the number of the first of the four parameters it uses, in `eventParams`' order.
 *
 * The lock comes from a CTE that the insert reads, so it is held before the first id is drawn:
 * a volatile CTE is evaluated once, before any row reaches the insert. The stored rows are
 * returned as the database has them (jsonb's key order), so a subscriber served live gets the
 * same bytes as one served by replay.
 */
export function eventAppendSql(at: number): string {
  // NOTIFY is delivered at commit and carries the newest id, so a broker that has the events
  // already (the committing one) need not read them back. PostgreSQL sends identical
  // notifications of one transaction once.
  return `ordered AS (SELECT pg_advisory_xact_lock($${at}) AS locked),
     inserted AS (
       INSERT INTO events (type, part_number, data)
       SELECT e.type, e.part_number, e.data FROM ordered,
              unnest($${at + 1}::text[], $${at + 2}::text[], $${at + 3}::jsonb[])
                AS e(type, part_number, data)
       RETURNING id, type, part_number, data
     ),
     appended AS (
       SELECT json_agg(json_build_object(
                'id', id, 'type', type, 'part_number', part_number, 'data', data)) AS events,
              pg_notify('${EVENTS_CHANNEL}', max(id)::text) AS notified
       FROM inserted
     )`
}

/** The parameters `eventAppendSql` refers to, in its order. */
export function eventParams(events: NewEvent[]): unknown[] {
  return [
    EVENT_ORDER_LOCK,
    events.map((e) => e.type),
    events.map((e) => e.part_number),
    events.map((e) => JSON.stringify(e.data)),
  ]
}

/** The stored rows of an append (`appended.events`), in id order. */
export function storedEvents(appended: unknown): StoredEvent[] {
  // json arrives parsed from pg and PGlite alike; text only if a driver leaves it unparsed.
  const rows = (typeof appended === 'string' ? JSON.parse(appended) : appended) as StoredEvent[]
  return rows.map(normalise).sort((a, b) => a.id - b.id)
}

/**
 * Appends events inside the caller's transaction, so an event exists exactly when its change
 * commits: one statement, lock included. Returns the stored rows with their ids.
 */
export async function appendEvents(tx: Queryable, events: NewEvent[]): Promise<StoredEvent[]> {
  if (events.length === 0) return []
  const { rows } = await tx.query<{ events: unknown }>(
    `WITH ${eventAppendSql(1)} SELECT events FROM appended`,
    eventParams(events),
    { prepared: true },
  )
  return storedEvents(rows[0]?.events)
}

function normalise(row: StoredEvent): StoredEvent {
  return { id: Number(row.id), type: row.type, part_number: row.part_number, data: row.data }
}

export function databaseEventSource(db: Queryable): EventSource {
  return {
    async readAfter(afterId, upToId, limit) {
      // `events.id`, not the float8 alias: ordering by the alias sorts every row up to the
      // head for each page (a catch-up after a large import read 100,000 rows per page).
      const { rows } = await db.query<StoredEvent>(
        `SELECT id::float8 AS id, type, part_number, data FROM events
         WHERE id > $1 AND id <= $2 ORDER BY events.id LIMIT $3`,
        [afterId, upToId, limit],
      )
      return rows.map(normalise)
    },
    async bounds() {
      const { rows } = await db.query<{ latest: number; pruned_through: number }>(
        `SELECT coalesce((SELECT max(id) FROM events), 0)::float8 AS latest,
                pruned_through::float8 AS pruned_through
         FROM event_log_state`,
      )
      const row = rows[0]
      return { latest: Number(row?.latest ?? 0), prunedThrough: Number(row?.pruned_through ?? 0) }
    },
  }
}

/**
 * Removes events beyond the retention limits, always keeping the newest one so that the next id
 * can be told from a replaced database. Returns the new pruned-through watermark.
 */
export async function pruneEvents(
  db: Database,
  retention: { maxCount: number; maxAgeMs: number },
): Promise<number> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [EVENT_ORDER_LOCK + 1])
    const { rows } = await tx.query<{ cutoff: number | null }>(
      `SELECT greatest(
         (SELECT max(id) FROM events) - $1::bigint,
         (SELECT max(id) FROM events WHERE created_at < now() - make_interval(secs => $2::float8 / 1000)
            AND id < (SELECT max(id) FROM events))
       )::float8 AS cutoff`,
      [retention.maxCount, retention.maxAgeMs],
    )
    const cutoff = rows[0]?.cutoff == null ? 0 : Number(rows[0].cutoff)
    if (cutoff > 0) {
      await tx.query('DELETE FROM events WHERE id <= $1', [cutoff])
      await tx.query(
        'UPDATE event_log_state SET pruned_through = greatest(pruned_through, $1::bigint)',
        [cutoff],
      )
    }
    const state = await tx.query<{ pruned_through: number }>(
      'SELECT pruned_through::float8 AS pruned_through FROM event_log_state',
    )
    return Number(state.rows[0]?.pruned_through ?? 0)
  })
}
