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

function consecutive(events: readonly StoredEvent[]): boolean {
  for (let i = 1; i < events.length; i++) {
    if ((events[i] as StoredEvent).id !== (events[i - 1] as StoredEvent).id + 1) return false
  }
  return true
}

/**
 * How long a gap before this process's own commits may stay open, or a commit notice stay
 * unknown, before the log is read: commit answers that overtook each other arrive within a
 * millisecond or so; another replica's events reach this one that much later.
 */
const GAP_WAIT_MS = 5

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
  /**
   * Commits handed over that could not be taken yet: while a read is under way, or after a gap
   * that commits still on their way in may fill (see takeCommitted).
   */
  private held: (readonly StoredEvent[])[] = []
  /** The newest id a commit notice named (see noticeCommitted). */
  private noticed = 0
  /** A read put off for GAP_WAIT_MS, shared by everyone who waits for it. */
  private waiting: Promise<void> | null = null
  // After a burst larger than the window every subscriber walks the same pages: each is read
  // and encoded once, not per client.
  private readonly pages = new Map<number, Promise<Entry[] | 'reset'>>()

  constructor(private readonly options: EventHistoryOptions) {
    this.window = new EventWindow(options.windowSize, 0)
  }

  get latestId(): number {
    return this.latest
  }

  /** The newest id taken or handed over (held until what is missing before it comes in). */
  private get knownId(): number {
    let known = this.latest
    for (const events of this.held) known = Math.max(known, (events.at(-1) as StoredEvent).id)
    return known
  }

  /** Every id up to this one has been pruned by retention. */
  get prunedThrough(): number {
    return this.pruned
  }

  /** A read of new events from the log is under way, or put off for commits on their way in. */
  get isReading(): boolean {
    return this.reading !== null || this.waiting !== null
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
   * (ids become visible in id order). On PostgreSQL the answers of commits made on several
   * connections overtake each other, and most commits land during some read; such events are
   * held, and taken once what is missing before them has come in the same way (or the read has
   * ended). Only a gap still open GAP_WAIT_MS later (a rolled-back id, another process's events
   * in between) reads the log, as do events that do not follow each other, or none given.
   */
  takeCommitted(events: readonly StoredEvent[]): Promise<void> {
    if (events.length === 0 || !consecutive(events)) return this.readNew()
    this.held.push(events)
    if (this.reading) return this.reading
    return this.takeHeld() ? Promise.resolve() : this.readSoon()
  }

  /**
   * A commit notice (NOTIFY) for events up to `newest`, from this process or another: read
   * unless they are known already or come in as this process's own commits within GAP_WAIT_MS.
   */
  noticeCommitted(newest: number): Promise<void> {
    if (!Number.isSafeInteger(newest)) return this.readNew()
    if (newest <= this.knownId) return Promise.resolve()
    this.noticed = Math.max(this.noticed, newest)
    return this.reading ?? this.readSoon()
  }

  /**
   * Takes the held events that now follow the newest id, in id order, up to the first gap.
   * True when nothing is left to read for: no gap, and every noticed id taken.
   */
  private takeHeld(): boolean {
    const held = this.held.sort((a, b) => (a[0] as StoredEvent).id - (b[0] as StoredEvent).id)
    while (held.length > 0) {
      const events = held[0] as readonly StoredEvent[]
      const next = events.find((e) => e.id > this.latest)
      if (next && next.id !== this.latest + 1) break
      this.take(events)
      held.shift()
    }
    return held.length === 0 && this.noticed <= this.latest
  }

  /** Reads the log GAP_WAIT_MS from now, unless what it would read for has come in by then. */
  private readSoon(): Promise<void> {
    this.waiting ??= new Promise<void>((resolve) => setTimeout(resolve, GAP_WAIT_MS)).then(() => {
      this.waiting = null
      return this.takeHeld() ? undefined : this.readNew()
    })
    return this.waiting
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
      // What was handed over or noticed meanwhile and does not follow what the read found is
      // read now: its commits had the whole read to come in.
      if (!this.takeHeld()) this.readAgain = true
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
