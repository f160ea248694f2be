import type { EventSource, StoredEvent } from '../../src/events/eventLog.js'

/** The event log as an array, with reads counted. */
export class MemoryLog implements EventSource {
  events: StoredEvent[] = []
  prunedThrough = 0
  reads = 0
  append(n: number): void {
    for (let i = 0; i < n; i++) {
      const id = (this.events[this.events.length - 1]?.id ?? this.prunedThrough) + 1
      this.events.push({
        id,
        type: 'item.created',
        part_number: `P-${id}`,
        data: { part_number: `P-${id}` },
      })
    }
  }
  prune(through: number): void {
    this.events = this.events.filter((e) => e.id > through)
    this.prunedThrough = through
  }
  async readAfter(afterId: number, upToId: number, limit: number) {
    this.reads++
    return this.events.filter((e) => e.id > afterId && e.id <= upToId).slice(0, limit)
  }
  async bounds() {
    return {
      latest: this.events[this.events.length - 1]?.id ?? this.prunedThrough,
      prunedThrough: this.prunedThrough,
    }
  }
}

/**
 * Holds every read of `log` until `release`; `readAfter` is the log's own, to put back. The
 * answer is the log as it is at release, or with `answer: 'as-asked'` as it was when the read
 * was made (a query that has run, its answer still on its way).
 */
export function holdReads(
  log: MemoryLog,
  answer: 'as-released' | 'as-asked' = 'as-released',
): { release: () => void; readAfter: MemoryLog['readAfter'] } {
  let release = () => {}
  const gate = new Promise<void>((resolve) => (release = resolve))
  const readAfter = log.readAfter.bind(log)
  log.readAfter = async (afterId, upToId, limit) => {
    if (answer === 'as-released') await gate
    const page = await readAfter(afterId, upToId, limit)
    await gate
    return page
  }
  return { release: () => release(), readAfter }
}
