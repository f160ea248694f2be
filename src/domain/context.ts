import type { Database, Queryable } from '../db/database.js'
import { appendEvents, type NewEvent, type StoredEvent } from '../events/eventLog.js'
import type { ObjectStorage } from '../storage/objectStorage.js'

/** What domain functions work with: the database, file storage and the event fan-out. */
export interface DomainContext {
  db: Database
  storage: ObjectStorage
  /** Called with the stored events after the transaction that appended them has committed. */
  eventsCommitted: (events: StoredEvent[]) => void
}

/**
 * Runs a mutation and appends the events it emits in the same transaction, so an event exists
 * exactly when its change does; wakes the fan-out once the commit has happened.
 */
export async function mutate<T>(
  ctx: DomainContext,
  fn: (tx: Queryable, emit: (event: NewEvent) => void) => Promise<T>,
): Promise<T> {
  let stored: StoredEvent[] = []
  const result = await ctx.db.transaction(async (tx) => {
    const events: NewEvent[] = []
    const value = await fn(tx, (event) => events.push(event))
    stored = await appendEvents(tx, events)
    return value
  })
  if (stored.length > 0) ctx.eventsCommitted(stored)
  return result
}
