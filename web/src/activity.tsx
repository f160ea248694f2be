import { useEffect, useState } from 'preact/hooks'
import { listen } from './live.ts'
import type { StoredEvent } from './eventStream.ts'
import { itemHref } from './route.ts'

const KEEP = 200

interface Seen extends StoredEvent {
  at: string
}

const feed: Seen[] = []

/** Recent events as they arrive; kept while the page is open, whichever view shows. */
listen({
  event: (event) => {
    feed.unshift({ ...event, at: new Date().toISOString() })
    feed.length = Math.min(feed.length, KEEP)
  },
})

export function ActivityPage() {
  const [, setTick] = useState(0)
  useEffect(() => listen({ event: () => setTick((t) => t + 1) }), [])
  return (
    <section aria-labelledby="activity-heading">
      <h2 id="activity-heading">Activity</h2>
      {feed.length === 0 && <p>No changes since this page opened.</p>}
      <ol class="activity" data-testid="activity">
        {feed.map((e) => {
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
