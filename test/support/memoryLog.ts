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
