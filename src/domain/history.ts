import { type Static, Type } from 'typebox'
import type { Queryable } from '../db/database.js'
import { STORED_EVENT_TYPES, type StoredEventType } from '../events/catalogue.js'
import { AppError, notFound } from './errors.js'
import { Actor, NextCursor, PartNumber, Timestamp } from './schemas.js'

/**
 * An item's history: its events as the log holds them, newest first. The log is pruned
 * (events.retention_count, events.retention_age), so the history reaches back as far as the
 * retained log does; it outlives the item itself, so a deleted item's history says who deleted it.
 */

export const HistoryEntry = Type.Object({
  id: Type.Integer({ minimum: 1 }),
  type: Type.Unsafe<StoredEventType>(
    Type.Union(STORED_EVENT_TYPES.map((type) => Type.Literal(type))),
  ),
  created_at: Timestamp,
  /** Who caused it; null for events written before silo recorded it. */
  actor: Type.Union([Actor, Type.Null()]),
  /** The event's data, as the stream sent it. */
  data: Type.Record(Type.String(), Type.Unknown()),
})
export type HistoryEntry = Static<typeof HistoryEntry>

export const ItemHistory = Type.Object({
  part_number: PartNumber,
  events: Type.Array(HistoryEntry),
  next_cursor: NextCursor,
})
export type ItemHistory = Static<typeof ItemHistory>

/** The cursor is the id of the last event of the previous page, opaque to clients. */
function decodeCursor(cursor: string): number {
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8')
  const id = /^ev:([0-9]{1,16})$/.exec(decoded)?.[1]
  if (id === undefined) throw new AppError(400, 'bad_request', 'invalid cursor')
  return Number(id)
}

const encodeCursor = (id: number) => Buffer.from(`ev:${id}`, 'utf8').toString('base64url')

interface EventRow {
  id: number
  type: StoredEventType
  created_at: Date | string
  data: Record<string, unknown>
}

/**
 * A page of an item's events, newest first; 404 when the item does not exist and the log holds
 * nothing about it.
 */
export async function itemHistory(
  db: Queryable,
  partNumber: string,
  query: { limit: number; cursor?: string },
): Promise<ItemHistory> {
  const before = query.cursor === undefined ? null : decodeCursor(query.cursor)
  // `events.id`: the alias would sort all of the item's events by the float8 for each page.
  const { rows } = await db.query<EventRow>(
    `SELECT id::float8 AS id, type, created_at, data FROM events
     WHERE part_number = $1 AND ($2::bigint IS NULL OR id < $2)
     ORDER BY events.id DESC LIMIT $3`,
    [partNumber, before, query.limit + 1],
  )
  if (rows.length === 0 && before === null) {
    const item = await db.query('SELECT 1 FROM items WHERE part_number = $1', [partNumber])
    if (item.rows.length === 0) throw notFound(`item ${partNumber}`)
  }
  const events = rows.slice(0, query.limit).map((row) => ({
    id: Number(row.id),
    type: row.type,
    created_at: new Date(row.created_at).toISOString(),
    actor: (row.data.actor as Actor | undefined) ?? null,
    data: row.data,
  }))
  const last = events[events.length - 1]
  return {
    part_number: partNumber,
    events,
    next_cursor: rows.length > query.limit && last ? encodeCursor(last.id) : null,
  }
}
