import type { EventSource, StoredEvent } from './eventLog.js'
import { encodeEvent } from './sseEncoding.js'

/** A stored event, encoded once; every subscriber writes the same bytes. */
export interface Entry {
  id: number
  type: string
  partNumber: string | null
  bytes: Buffer
}

export interface EventHistoryOptions {
  source: EventSource
  /** How many recent events are kept encoded in memory. */
  windowSize: number
  /** Most events read from the log in one query. */
  pageSize: number
  /** Called with how many new events were taken in, after they are readable. */
  onTaken: (count: number) => void
}

function toEntry(event: StoredEvent): Entry {
  return {
    id: event.id,
    type: event.type,
    partNumber: event.part_number,
    bytes: encodeEvent({ id: event.id, type: event.type, data: event.data }),
  }
}

/**
 * Lets the event loop answer others (probes, requests) before going on. An embedded database
 * answers a query within the same turn, so reads awaited back to back (many subscribers catching
 * up after a burst, page by page) would otherwise never give it back.
 */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * Recent history of encoded events: every id in (floor, newest] that the log holds. Older ids
 * must be read from the log itself.
 */
class EventWindow {
  private entries: Entry[] = []
  floor: number

  constructor(
    private readonly size: number,
    floor: number,
  ) {
    this.floor = floor
  }

  append(entry: Entry): void {
    this.entries.push(entry)
    // Trim in halves so appends stay O(1) amortised.
    if (this.entries.length >= this.size * 2) {
      const evicted = this.entries.splice(0, this.entries.length - this.size)
      this.floor = (evicted[evicted.length - 1] as Entry).id
    }
  }

  covers(cursor: number): boolean {
    return cursor >= this.floor
  }

  after(cursor: number, limit: number): Entry[] {
    let lo = 0
    let hi = this.entries.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((this.entries[mid] as Entry).id <= cursor) lo = mid + 1
      else hi = mid
    }
    return this.entries.slice(lo, lo + limit)
  }

  reset(floor: number): void {
    this.entries = []
    this.floor = floor
  }
}

/** Log pages kept for readers behind the window. */
const PAGE_CACHE_SIZE = 8

/**
 * What the event log holds, as the fan-out reads it: the newest id and the retention watermark,
 * the recent events encoded in memory, and older ones read from the log by cursor in pages that
 * every reader at that cursor shares. New events come in two ways: as this process committed
 * them, or read from the log (committed elsewhere, or after a gap).
 */
export class EventHistory {
  private readonly window: EventWindow
  private latest = 0
  private pruned = 0
  private reading: Promise<void> | null = null
  private readAgain = false
  // After a burst larger than the window every subscriber walks the same pages: each is read
  // and encoded once, not per client.
  private readonly pages = new Map<number, Promise<Entry[] | 'reset'>>()

  constructor(private readonly options: EventHistoryOptions) {
    this.window = new EventWindow(options.windowSize, 0)
  }

  get latestId(): number {
    return this.latest
  }

  /** Every id up to this one has been pruned by retention. */
  get prunedThrough(): number {
    return this.pruned
  }

  /** A read of new events from the log is under way. */
  get isReading(): boolean {
    return this.reading !== null
  }

  async start(): Promise<void> {
    const bounds = await this.options.source.bounds()
    this.latest = bounds.latest
    this.pruned = bounds.prunedThrough
    this.window.reset(this.latest)
  }

  /**
   * Takes events this process has just committed, as the insert returned them, without reading
   * them back: when they directly follow the newest known id, nothing can be missing before them
   * (ids become visible in id order). Anything else (none given, a gap left by a rolled-back id,
   * another process's events in between, a read in progress) reads the log instead.
   */
  takeCommitted(events: readonly StoredEvent[]): Promise<void> {
    const first = events[0]
    if (this.reading || !first || first.id !== this.latest + 1) return this.readNew()
    for (let i = 1; i < events.length; i++) {
      if ((events[i] as StoredEvent).id !== (events[i - 1] as StoredEvent).id + 1) {
        return this.readNew()
      }
    }
    this.take(events)
    return Promise.resolve()
  }

  /** Reads every event committed after the newest one known; concurrent calls share one read. */
  readNew(): Promise<void> {
    if (this.reading) {
      this.readAgain = true
      return this.reading
    }
    this.reading = this.readPages().finally(() => {
      this.reading = null
    })
    return this.reading
  }

  private async readPages(): Promise<void> {
    const { source, pageSize } = this.options
    do {
      this.readAgain = false
      for (;;) {
        const page = await source.readAfter(this.latest, Number.MAX_SAFE_INTEGER, pageSize)
        this.take(page)
        if (page.length < pageSize) break
        await yieldToEventLoop()
      }
    } while (this.readAgain)
  }

  private take(events: readonly StoredEvent[]): void {
    const fresh = events.filter((e) => e.id > this.latest)
    if (fresh.length === 0) return
    for (const event of fresh) this.window.append(toEntry(event))
    this.latest = (fresh[fresh.length - 1] as StoredEvent).id
    this.options.onTaken(fresh.length)
  }

  /** Records a new retention watermark (after pruning). */
  notePruned(prunedThrough: number): void {
    if (prunedThrough > this.pruned) this.pruned = prunedThrough
  }

  /** Whether the events after `cursor` can all be taken from memory, without reading the log. */
  inWindow(cursor: number): boolean {
    return cursor >= this.pruned && this.window.covers(cursor)
  }

  /** Up to `limit` events after `cursor` from memory; only for a cursor `inWindow`. */
  windowAfter(cursor: number, limit: number): Entry[] {
    return this.window.after(cursor, limit)
  }

  /**
   * The next events after `cursor`: up to `limit` from memory, or a page from the log; `reset`
   * when retention has pruned events after it.
   */
  async entriesAfter(cursor: number, limit: number): Promise<Entry[] | 'reset'> {
    if (cursor < this.pruned) return 'reset'
    if (this.window.covers(cursor)) return this.window.after(cursor, limit)
    let page = this.pages.get(cursor)
    if (!page) {
      page = this.readPage(cursor)
      this.pages.set(cursor, page)
      if (this.pages.size > PAGE_CACHE_SIZE) {
        this.pages.delete(this.pages.keys().next().value as number)
      }
      // Only non-empty pages stay: an empty one means "caught up", which is true only once.
      page.then(
        (entries) => {
          if (entries === 'reset' || entries.length === 0) this.pages.delete(cursor)
        },
        () => this.pages.delete(cursor),
      )
    }
    return page
  }

  private async readPage(cursor: number): Promise<Entry[] | 'reset'> {
    const { source, pageSize } = this.options
    const page = await source.readAfter(cursor, this.latest, pageSize)
    // Retention may have run while we read; the watermark tells whether rows went missing.
    const bounds = await source.bounds()
    this.notePruned(bounds.prunedThrough)
    if (cursor < this.pruned) return 'reset'
    const entries = page.map(toEntry)
    await yieldToEventLoop()
    return entries
  }
}
