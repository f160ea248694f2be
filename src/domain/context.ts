import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import type { Database, Queryable } from '../db/database.js'
import {
  appendEvents,
  eventAppendSql,
  eventParams,
  type NewEvent,
  type StoredEvent,
  storedEvents,
} from '../events/eventLog.js'
import type { ObjectStorage } from '../storage/objectStorage.js'
import type { Actor } from './schemas.js'

/** What domain functions work with: the database, file storage and the event fan-out. */
export interface DomainContext {
  db: Database
  storage: ObjectStorage
  /** Called with the stored events after the transaction that appended them has committed. */
  eventsCommitted: (events: StoredEvent[]) => void
}

/**
 * A domain context on behalf of someone: every change made through it records `actor`, on the
 * rows it writes (created_by, updated_by) and in its events.
 */
export interface ActingContext extends DomainContext {
  actor: Actor
}

/** The server acting on its own (start-up, sweeps). */
export const SYSTEM_ACTOR: Actor = { token_id: null, name: 'system' }

/** The command line, run by `user` on the server's machine. */
export function cliActor(user: string): Actor {
  return { token_id: null, name: `cli:${user}` }
}

export function actingAs(ctx: DomainContext, actor: Actor): ActingContext {
  return { ...ctx, actor }
}

/**
 * Events appended per statement, and handed to the fan-out per call: a bulk import's thousands
 * go in several, with yields between (on PGlite, appending 500 takes about 15 ms of this thread).
 */
const EVENT_SLICE = 500

/**
 * Runs a mutation and appends the events it emits in the same transaction, so an event exists
 * exactly when its change does; wakes the fan-out once the commit has happened. The events are
 * appended at the end, because appending takes the event-order lock until the commit: other
 * writers wait only for that last part. A mutation that emits many passes `slices`, awaited
 * between two appends (to yield, or to give up past a deadline); after the commit, the events
 * are handed to the fan-out a slice at a time, yielding between.
 */
export async function mutate<T>(
  ctx: DomainContext,
  fn: (tx: Queryable, emit: (event: NewEvent) => void) => Promise<T>,
  slices?: { between: () => Promise<void> },
): Promise<T> {
  const stored: StoredEvent[] = []
  const result = await ctx.db.transaction(async (tx) => {
    const events: NewEvent[] = []
    const value = await fn(tx, (event) => events.push(event))
    for (let at = 0; at < events.length; at += EVENT_SLICE) {
      if (at > 0) await slices?.between()
      for (const event of await appendEvents(tx, events.slice(at, at + EVENT_SLICE))) {
        stored.push(event)
      }
    }
    return value
  })
  for (let at = 0; at < stored.length; at += EVENT_SLICE) {
    if (at > 0) await yieldToEventLoop()
    ctx.eventsCommitted(stored.slice(at, at + EVENT_SLICE))
  }
  return result
}

/**
 * A change that is one statement (an INSERT … RETURNING, say) whose events are known before it
 * runs: the change and the append go to the database as one statement, which is atomic by
 * itself, so the mutation is one round trip instead of BEGIN, change, append, COMMIT. `sql` is
 * a fixed text (the statement is prepared) using parameters $1…$n (`params`); it either applies
 * or raises, and its RETURNING rows come back.
 */
export async function mutateInOneStatement<T>(
  ctx: DomainContext,
  change: { sql: string; params: unknown[] },
  events: NewEvent[],
): Promise<T[]> {
  if (events.length === 0) throw new Error('mutateInOneStatement needs the events it appends')
  const { rows } = await ctx.db.query<T & { events: unknown }>(
    `WITH changed AS (${change.sql}),
     ${eventAppendSql(change.params.length + 1)}
     SELECT changed.*, appended.events FROM changed, appended`,
    [...change.params, ...eventParams(events)],
    { prepared: true },
  )
  const first = rows[0]
  if (!first) throw new Error('a one-statement change returned no row')
  ctx.eventsCommitted(storedEvents(first.events))
  return rows.map(({ events: _events, ...row }) => row as T)
}
