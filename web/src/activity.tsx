import { signal } from '@preact/signals'
import type { StoredEvent } from './eventStream.ts'
import { listen } from './live.ts'
import { itemHref } from './route.ts'

const KEEP = 200

interface Seen extends StoredEvent {
  at: string
}

/**
 * Recent events as they arrive, kept while the page is open whichever view shows. A signal, so
 * the feed re-renders for an event that arrives before the page has finished mounting too.
 */
const feed = signal<readonly Seen[]>([])

listen({
  event: (event) => {
    feed.value = [{ ...event, at: new Date().toISOString() }, ...feed.value].slice(0, KEEP)
  },
})

export function ActivityPage() {
  const seen = feed.value
  return (
    <section aria-labelledby="activity-heading">
      <h2 id="activity-heading">Activity</h2>
      {seen.length === 0 && <p>No changes since this page opened.</p>}
      <ol class="activity" data-testid="activity">
        {seen.map((e) => {
          const partNumber = typeof e.data.part_number === 'string' ? e.data.part_number : null
          const actor = (e.data.actor as { name?: string } | undefined)?.name
          return (
            <li key={e.id} data-id={e.id}>
              <span class="event-type">{e.type}</span>{' '}
              {partNumber && <a href={itemHref(partNumber)}>{partNumber}</a>}{' '}
              {actor && <span>by {actor}</span>}{' '}
              <time dateTime={e.at}>{new Date(e.at).toLocaleTimeString()}</time>
            </li>
          )
        })}
      </ol>
    </section>
  )
}
