import type { Database, Queryable } from '../db/database.js'
import { appendEvents, type NewEvent } from '../events/eventLog.js'
import type { ObjectStorage } from '../storage/objectStorage.js'

/** What domain functions work with: the database, file storage and the event fan-out. */
export interface DomainContext {
  db: Database
  storage: ObjectStorage
  /** Called after a transaction that appended events has committed. */
  eventsCommitted: () => void
}

/**
 * Runs a mutation and appends the events it emits in the same transaction, so an event exists
 * exactly when its change does; wakes the fan-out once the commit has happened.
 */
export async function mutate<T>(
  ctx: DomainContext,
  fn: (tx: Queryable, emit: (event: NewEvent) => void) => Promise<T>,
): Promise<T> {
  let emitted = 0
  const result = await ctx.db.transaction(async (tx) => {
    const events: NewEvent[] = []
    const value = await fn(tx, (event) => events.push(event))
    await appendEvents(tx, events)
    emitted = events.length
    return value
  })
  if (emitted > 0) ctx.eventsCommitted()
  return result
}
