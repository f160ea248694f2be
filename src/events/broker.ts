import { performance } from 'node:perf_hooks'
import type { Writable } from 'node:stream'
import type { LiveEventType } from './catalogue.js'
import type { EventSource, StoredEvent } from './eventLog.js'
import { type Entry, EventHistory } from './eventHistory.js'
import { RAW_FRAMING, type Framing } from './framing.js'
import { encodeEvent, encodeRetry } from './sseEncoding.js'
import { TurnBudget } from './turnBudget.js'

export interface SubscriptionFilter {
  types?: ReadonlySet<string>
  partNumber?: string
}

export interface SubscribeOptions {
  lastEventId?: number
  filter?: SubscriptionFilter
  /** Written right after `retry:`, before anything from the log (the current server mode). */
  greeting?: () => UnstoredEvent
  /** Whose stream this is, opaque to the broker: `closeWhere` picks subscriptions by it. */
  owner?: unknown
}

/** An event that is not stored and has no id (server.state, stream.closed). */
export interface UnstoredEvent {
  type: LiveEventType
  data: unknown
}

export interface BrokerOptions {
  source: EventSource
  /** How many recent events are kept encoded in memory (see EventHistory). */
  windowSize: number
  retryMs: number
  heartbeatMs: number
  /** Most events written to one socket in one go (DEFAULT_BATCH_SIZE). */
  batchSize?: number
  /**
   * Most events read from the log in one query. On the embedded database a query holds the
   * event loop while it runs: 256 events take about 20 ms here, 512 twice that.
   */
  pageSize?: number
  /** Delay before a read of the log that failed is tried again. */
  readRetryMs?: number
  onError?: (err: unknown, context: string) => void
}

/** Why a stream.reset was sent. */
export type ResetReason =
  /** The client's Last-Event-ID is older than the retained history. */
  | 'last_event_id_pruned'
  /** The client's Last-Event-ID is newer than the newest event (the database was replaced). */
  | 'last_event_id_unknown'
  /** The client read too slowly and retention pruned events it had not been sent yet. */
  | 'fell_behind'

/**
 * Counts what the broker does (for metrics). Calls are synchronous and made at most once per
 * log page or write batch, never per event per subscriber.
 */
export interface BrokerObserver {
  /** Committed events taken in, each once however many subscribers get it. */
  committed(count: number): void
  /** Stored events written to one subscriber's socket in one batch. */
  delivered(count: number): void
  reset(reason: ResetReason): void
  /** A subscriber that had stopped reading was cut off at shutdown (its socket destroyed). */
  stalledDestroyed(): void
}

interface Subscriber {
  sink: Writable
  framing: Framing
  owner: unknown
  cursor: number
  /**
   * The Last-Event-ID the client asked for. A reset while the cursor still sits there is due to
   * that id, not to the client's pace.
   */
  resumeFrom: number | undefined
  filter: SubscriptionFilter
  /** No filter: it can share the bytes written to every other such subscriber at its cursor. */
  unfiltered: boolean
  closed: boolean
  /** Set while the pump pauses after a read error; calling it ends the pause. */
  wake: (() => void) | null
  /** Settles the promise `subscribe` returned. */
  ended: () => void
  /** Listens for the sink's 'close', which ends the subscription. */
  onClose: () => void
}

const HEARTBEAT = encodeEvent({ type: 'heartbeat', data: {} })

/** A socket that dies mid-write reports it here; 'close' follows and ends the subscription. */
function ignoreError(): void {}

/** One message framed at most once per framing, however many subscribers it goes to. */
class FramedOnce {
  private readonly framed = new Map<Framing, Buffer>()
  constructor(private readonly bytes: Buffer) {}
  for(framing: Framing): Buffer {
    let framed = this.framed.get(framing)
    if (!framed) {
      framed = framing.frame(this.bytes)
      this.framed.set(framing, framed)
    }
    return framed
  }
}

/** The events after one cursor, as one buffer, and how many there are. */
interface Batch {
  bytes: FramedOnce | null
  count: number
  lastId: number
}

function batchOf(entries: readonly Entry[], filter: SubscriptionFilter | null): Batch {
  const matching = filter ? entries.filter((e) => matches(e, filter)) : entries
  const lastId = entries.length > 0 ? (entries[entries.length - 1] as Entry).id : 0
  const bytes =
    matching.length === 0
      ? null
      : new FramedOnce(
          matching.length === 1
            ? (matching[0] as Entry).bytes
            : Buffer.concat(matching.map((e) => e.bytes)),
        )
  return { bytes, count: matching.length, lastId }
}

function matches(entry: Entry, filter: SubscriptionFilter): boolean {
  if (filter.types && !filter.types.has(entry.type)) return false
  if (filter.partNumber !== undefined && entry.partNumber !== filter.partNumber) return false
  return true
}

/**
 * The longest one slice of a flush or heartbeat, or the catch-up of all pumps together, writes
 * before the event loop answers others.
 */
const FLUSH_SLICE_MS = 10

/** Most events written to one socket in one go, unless the broker is told otherwise. */
export const DEFAULT_BATCH_SIZE = 512

/**
 * Catch-up batches kept for sharing: pumps a few batches apart still meet in it, and it holds at
 * most this many batches of encoded events (16 × 512 events of some 250 bytes: 2 MB).
 */
const CATCH_UP_BATCHES = 16

/** A flush pass's cost times these is the least time from its start to the next's. */
const QUIET_FLUSH_SHARE = 2
const BUSY_FLUSH_SHARE = 6
/**
 * Events per pass from which writes count as coming faster than passes. Not 2: a steady 50/s
 * often puts two in one pass, and the longer busy gap then keeps it there.
 */
const BUSY_PASS_EVENTS = 4

/** One flush pass: when it began, the time it spent writing, and how many new events it had. */
export interface FlushPass {
  at: number
  busy: number
  events: number
}

/** How long after `now` the next pass may start, given the last one (see scheduleFlush). */
export function flushDelay(last: FlushPass, now: number): number {
  const share = last.events >= BUSY_PASS_EVENTS ? BUSY_FLUSH_SHARE : QUIET_FLUSH_SHARE
  return last.at + share * last.busy - now
}

/**
 * Calls `visit` for each item, at most FLUSH_SLICE_MS at a time: then it lets the event loop
 * answer others and goes on where it stopped (Set iterators stay valid across deletions and see
 * members added later). `sliceDone` gets each slice's duration and whether it was the last.
 */
function sliced<T>(
  items: Iterator<T>,
  visit: (item: T) => void,
  sliceDone: (ms: number, finished: boolean) => void = () => {},
): void {
  const started = performance.now()
  for (let visited = 1; ; visited++) {
    if (visited % 32 === 0 && performance.now() - started > FLUSH_SLICE_MS) {
      sliceDone(performance.now() - started, false)
      setImmediate(() => sliced(items, visit, sliceDone))
      return
    }
    const next = items.next()
    if (next.done) break
    visit(next.value)
  }
  sliceDone(performance.now() - started, true)
}

/**
 * Fans the event log out to SSE subscribers. Every subscriber reads the history by cursor: one
 * that is caught up sits in the live set, and new events are written to all of them in one
 * synchronous loop per turn of the event loop (events committed in the same turn go out in one
 * write per socket, one buffer shared by every unfiltered subscriber). A subscriber whose socket
 * pushes back, or that is behind, leaves the live set and catches up at its own pace in its own
 * pump (from the history's window, then its log pages), and with `stream.reset` once it lags
 * behind retention. Nothing is queued per subscriber, so memory is bounded by the window, not by
 * clients × backlog.
 */
export class Broker {
  private readonly subscribers = new Set<Subscriber>()
  private readonly live = new Set<Subscriber>()
  private readonly batchSize: number
  private readonly readRetryMs: number
  private readonly history: EventHistory
  /** A flush turn is queued. */
  private flushScheduled = false
  /** The flush pass under way (it may span turns of the event loop). */
  private pass: FlushPass | null = null
  /** Events were taken while a pass was under way: another pass must follow it. */
  private passAgain = false
  /** The last pass, for pacing the next. */
  private lastPass: FlushPass = { at: 0, busy: 0, events: 0 }
  /** Events taken since the last pass began: what the next pass carries. */
  private takenSincePass = 0
  /** Batches that pumps at the same cursor share (see catchUpBatch), oldest first. */
  private readonly catchUpBatches = new Map<number, Batch>()
  /** What every pump's catch-up work may take of one turn, together. */
  private readonly catchUpTurns = new TurnBudget(FLUSH_SLICE_MS)
  private heartbeatTimer: NodeJS.Timeout | null = null
  private closed = false
  private observer: BrokerObserver | null = null

  constructor(private readonly options: BrokerOptions) {
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE
    this.readRetryMs = options.readRetryMs ?? 1000
    this.history = new EventHistory({
      source: options.source,
      windowSize: options.windowSize,
      pageSize: options.pageSize ?? Math.min(this.batchSize, 256),
      onTaken: (count) => {
        this.takenSincePass += count
        this.observer?.committed(count)
        this.scheduleFlush()
      },
    })
  }

  get latestId(): number {
    return this.history.latestId
  }

  get subscriberCount(): number {
    return this.subscribers.size
  }

  /** Bytes written to subscriber sockets that the kernel has not taken yet, over all clients. */
  get bufferedBytes(): number {
    let total = 0
    for (const sub of this.subscribers) total += sub.sink.writableLength
    return total
  }

  /** Reports counts to `observer` from now on (one observer; a later call replaces it). */
  observe(observer: BrokerObserver): () => void {
    this.observer = observer
    return () => {
      if (this.observer === observer) this.observer = null
    }
  }

  async start(): Promise<void> {
    await this.history.start()
    if (this.options.heartbeatMs > 0) {
      this.heartbeatTimer = setInterval(() => this.heartbeat(), this.options.heartbeatMs)
      this.heartbeatTimer.unref()
    }
  }

  /**
   * Wakes the fan-out after a commit: takes `events` as this process stored them, or reads the
   * log for whatever was committed since the newest event known (after another process's commit,
   * or when `events` do not directly follow it). A read that fails is reported and tried again
   * after `readRetryMs`; the promise settles with the first attempt and never rejects.
   */
  eventsCommitted(events: readonly StoredEvent[] = []): Promise<void> {
    return this.retried(this.history.takeCommitted(events))
  }

  /**
   * Wakes the fan-out for a commit notice naming `newest` (from any process): reads the log
   * unless those events are known or arrive as this process's own commits (see EventHistory).
   */
  commitNoticed(newest: number): Promise<void> {
    return this.retried(this.history.noticeCommitted(newest))
  }

  /** A read that fails is reported and tried again after `readRetryMs`; never rejects. */
  private retried(reading: Promise<void>): Promise<void> {
    return reading.catch((err: unknown) => {
      this.options.onError?.(err, 'reading new events failed; retrying')
      setTimeout(() => void this.eventsCommitted(), this.readRetryMs).unref()
    })
  }

  /**
   * Events are not written as they are taken: the committing request answers first, and events
   * committed before the flush runs share its writes. A pass costs about the same whatever it
   * carries (one write per socket), so under a stream of writes the fan-out is paced: after a
   * pass that spent t ms writing, the next starts no sooner than 2t after that one began (at
   * most half of the loop), or 6t once passes carry several events each, as writes then come
   * faster than passes (at most a sixth; each pass carries more). A quiet server flushes at
   * once; writers under load keep most of the process, at the price of up to 6t of latency
   * (README "The event stream").
   */
  private scheduleFlush(): void {
    if (this.pass) {
      this.passAgain = true
      return
    }
    if (this.flushScheduled) return
    this.flushScheduled = true
    const wait = flushDelay(this.lastPass, performance.now())
    if (wait >= 1) setTimeout(() => this.flush(), wait).unref()
    else setImmediate(() => this.flush())
  }

  /** Records a new retention watermark (after pruning). */
  notePruned(prunedThrough: number): void {
    this.history.notePruned(prunedThrough)
  }

  /**
   * Serves one SSE connection on `sink` until it closes or the broker shuts down. Resolves when
   * the subscription has ended, and never rejects: a failure is reported to `onError` and ends
   * the stream. `sink` is normally the socket itself, with `framing` matching the response's
   * transfer coding.
   */
  subscribe(sink: Writable, options: SubscribeOptions & { framing?: Framing } = {}): Promise<void> {
    return new Promise((ended) => {
      this.open(sink, options, ended).catch((err: unknown) => {
        this.options.onError?.(err, 'opening an event stream failed')
        sink.destroy()
        ended()
      })
    })
  }

  /**
   * Greets the client and hands its subscription to a pump. Nothing waits for the subscription
   * once it is open: a caught-up one sits in the live set with no suspended frame or promise
   * chain kept for it (those were a fifth of an idle stream's memory), and it ends in `finish`.
   */
  private async open(
    sink: Writable,
    options: SubscribeOptions & { framing?: Framing },
    ended: () => void,
  ): Promise<void> {
    const framing = options.framing ?? RAW_FRAMING
    const retry = encodeRetry(this.options.retryMs)
    if (options.lastEventId === undefined && this.history.isReading) {
      // A commit already answered may still be on its way in through this read: the stream
      // starts with the next new event, so it starts after that one. The greeting waits for
      // the read, so whatever the client changes after seeing it is never skipped.
      await this.readNewQuietly()
      if (sink.destroyed) return ended()
    }
    if (this.closed) {
      sink.write(framing.frame(retry))
      sink.end(framing.end)
      return ended()
    }
    // Taken now, not when the request came in: a mode change during the wait above reached
    // only the subscribers there were then.
    const greeting = options.greeting?.()
    const greetingBytes = greeting
      ? encodeEvent({ type: greeting.type, data: greeting.data })
      : null
    sink.write(framing.frame(greetingBytes ? Buffer.concat([retry, greetingBytes]) : retry))
    const filter = options.filter ?? {}
    const sub: Subscriber = {
      sink,
      framing,
      owner: options.owner,
      cursor: this.history.latestId,
      resumeFrom: undefined,
      filter,
      unfiltered: filter.types === undefined && filter.partNumber === undefined,
      closed: false,
      wake: null,
      ended,
      onClose: () => this.finish(sub),
    }
    sink.on('close', sub.onClose)
    sink.on('error', ignoreError)
    this.subscribers.add(sub)
    const requested = options.lastEventId
    if (requested !== undefined) {
      // An id this process has not seen yet may have been committed elsewhere; look first.
      if (requested > this.history.latestId) await this.readNewQuietly()
      if (sub.closed) return
      if (requested > this.history.latestId) {
        this.writeReset(sub, requested, 'last_event_id_unknown')
      } else sub.cursor = sub.resumeFrom = requested
    }
    this.startPump(sub)
  }

  /** Where a subscription ends, however it ends (its sink closed, or the broker ended it). */
  private finish(sub: Subscriber): void {
    sub.closed = true
    this.subscribers.delete(sub)
    this.live.delete(sub)
    sub.sink.off('close', sub.onClose)
    sub.sink.off('error', ignoreError)
    sub.wake?.()
    sub.ended()
  }

  private async readNewQuietly(): Promise<void> {
    try {
      await this.history.readNew()
    } catch (err) {
      this.options.onError?.(err, 'refresh')
    }
  }

  /** Runs a pump for a subscriber that is not in the live set; one that fails ends the stream. */
  private startPump(sub: Subscriber): void {
    this.pump(sub).catch((err: unknown) => {
      this.options.onError?.(err, 'serving an event stream failed')
      if (!sub.closed) this.end(sub, null)
    })
  }

  /**
   * Brings one subscriber up to the head at its own pace, then hands it to the live set and
   * returns: `release` starts a new pump when the subscriber falls behind again.
   */
  private async pump(sub: Subscriber): Promise<void> {
    while (!sub.closed && !this.closed) {
      if (sub.sink.writableNeedDrain) {
        await this.drained(sub)
        continue
      }
      if (sub.cursor >= this.history.latestId) {
        // Caught up: the flush writes new events to it.
        this.live.add(sub)
        return
      }
      let entries: Entry[] | 'reset'
      try {
        entries = await this.history.entriesAfter(sub.cursor, this.batchSize)
      } catch (err) {
        this.options.onError?.(err, 'read event log')
        await this.pause(sub, this.readRetryMs)
        continue
      }
      if (sub.closed || this.closed) break
      if (entries === 'reset') {
        // The reset's id is where the stream resumes: like a greeting, it waits for commits
        // already answered that are still being read in, so the client need not be told of
        // changes its refetch will show.
        if (this.history.isReading) await this.readNewQuietly()
        if (sub.closed || this.closed) break
        const resumed = sub.cursor === sub.resumeFrom
        this.writeReset(sub, sub.cursor, resumed ? 'last_event_id_pruned' : 'fell_behind')
        continue
      }
      if (entries.length === 0) {
        sub.cursor = this.history.latestId
        continue
      }
      while (!this.catchUpTurns.tryTake()) await this.catchUpTurns.nextTurn()
      if (sub.closed || this.closed) break
      this.deliver(sub, this.catchUpBatch(sub, entries))
    }
  }

  /**
   * The batch a pump writes for `entries`, the events after its cursor. After a burst every pump
   * walks the same cursors, so unfiltered ones share each batch (its bytes concatenated and
   * framed once, not a copy of up to a batch of events per client); the longest batch made at a
   * cursor is kept, for the CATCH_UP_BATCHES most recent cursors.
   */
  private catchUpBatch(sub: Subscriber, entries: readonly Entry[]): Batch {
    if (!sub.unfiltered) return batchOf(entries, sub.filter)
    const last = (entries[entries.length - 1] as Entry).id
    let batch = this.catchUpBatches.get(sub.cursor)
    if (!batch || batch.lastId < last) {
      batch = batchOf(entries, null)
      this.catchUpBatches.delete(sub.cursor)
      this.catchUpBatches.set(sub.cursor, batch)
      if (this.catchUpBatches.size > CATCH_UP_BATCHES) {
        this.catchUpBatches.delete(this.catchUpBatches.keys().next().value as number)
      }
    }
    return batch
  }

  /**
   * Writes new events to every live subscriber, in slices (see `sliced`) so that requests and
   * probes are answered in between even with thousands of clients. Subscribers at the same
   * cursor without a filter (nearly all of them) share one buffer. One that cannot take it all
   * now (its socket pushes back, the backlog exceeds one batch, or it fell out of the window)
   * leaves the live set and continues in its pump.
   */
  private flush(): void {
    this.flushScheduled = false
    const pass: FlushPass = { at: performance.now(), busy: 0, events: this.takenSincePass }
    this.takenSincePass = 0
    this.pass = pass
    // Per slice: events taken between slices make earlier batches short.
    let shared = new Map<number, Batch>()
    let delivered = 0
    sliced(
      this.live.values(),
      (sub) => {
        if (sub.cursor >= this.history.latestId || sub.closed) return
        if (sub.sink.writableNeedDrain || !this.history.inWindow(sub.cursor)) {
          this.release(sub)
          return
        }
        let batch = sub.unfiltered ? shared.get(sub.cursor) : undefined
        if (!batch) {
          const entries = this.history.windowAfter(sub.cursor, this.batchSize)
          batch = batchOf(entries, sub.unfiltered ? null : sub.filter)
          if (sub.unfiltered) shared.set(sub.cursor, batch)
        }
        delivered += this.deliver(sub, batch, false)
        if (sub.cursor < this.history.latestId || sub.sink.writableNeedDrain) this.release(sub)
      },
      (ms, finished) => {
        if (delivered > 0) this.observer?.delivered(delivered)
        delivered = 0
        shared = new Map()
        pass.busy += ms
        if (!finished) return
        this.pass = null
        this.lastPass = pass
        if (this.passAgain) {
          this.passAgain = false
          this.scheduleFlush()
        }
      },
    )
  }

  /** Takes a subscriber out of the live set and starts its pump. */
  private release(sub: Subscriber): void {
    this.live.delete(sub)
    this.startPump(sub)
  }

  /**
   * Writes a batch in one socket write and moves the cursor past it (past skipped events too).
   * Returns how many events were written; reports them unless the caller sums for many.
   */
  private deliver(sub: Subscriber, batch: Batch, report = true): number {
    if (batch.bytes) sub.sink.write(batch.bytes.for(sub.framing))
    sub.cursor = batch.lastId
    if (report && batch.count > 0) this.observer?.delivered(batch.count)
    return batch.count
  }

  private writeReset(sub: Subscriber, lastEventId: number, reason: ResetReason): void {
    this.observer?.reset(reason)
    // The reset carries the id it resumes after, so a client that reconnects before the next
    // event resends that id and is not reset (and made to refetch) a second time.
    const reset = encodeEvent({
      id: this.history.latestId,
      type: 'stream.reset',
      data: { last_event_id: lastEventId, oldest_available_id: this.history.prunedThrough + 1 },
    })
    sub.sink.write(sub.framing.frame(reset))
    sub.cursor = this.history.latestId
  }

  /**
   * Waits until the socket takes more data or goes away. New events must not end this wait:
   * waking a stalled subscriber for them would buffer its backlog in memory.
   */
  private drained(sub: Subscriber): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        sub.sink.off('drain', done)
        sub.sink.off('close', done)
        resolve()
      }
      sub.sink.on('drain', done)
      sub.sink.on('close', done)
    })
  }

  private pause(sub: Subscriber, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        sub.wake = null
        resolve()
      }
      sub.wake = done
    })
  }

  /** Keeps idle connections (and the proxies on their way) from timing out. */
  private heartbeat(): void {
    const bytes = new FramedOnce(HEARTBEAT)
    sliced(this.live.values(), (sub) => {
      if (!sub.closed && !sub.sink.writableNeedDrain) sub.sink.write(bytes.for(sub.framing))
    })
  }

  /** Sends an event that is not stored and has no id (server.state) to every subscriber. */
  broadcast(type: LiveEventType, data: unknown): void {
    const bytes = new FramedOnce(encodeEvent({ type, data }))
    for (const sub of this.subscribers) if (!sub.closed) sub.sink.write(bytes.for(sub.framing))
  }

  /**
   * Ends the subscriptions whose owner `picks` after `final`, which is the last thing they get.
   * Returns how many it ended.
   */
  closeWhere(picks: (owner: unknown) => boolean, final: UnstoredEvent): number {
    const bytes = new FramedOnce(encodeEvent(final))
    let ended = 0
    for (const sub of this.subscribers) {
      if (sub.closed || !picks(sub.owner)) continue
      this.end(sub, bytes)
      ended++
    }
    return ended
  }

  /** Ends every subscription after a final event; later subscribers are turned away at once. */
  close(final?: UnstoredEvent): void {
    if (this.closed) return
    this.closed = true
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer)
    const bytes = final ? new FramedOnce(encodeEvent(final)) : null
    for (const sub of this.subscribers) {
      if (!sub.closed && this.end(sub, bytes) === 'destroyed') this.observer?.stalledDestroyed()
    }
  }

  /**
   * Writes `final` and ends the stream. A client that stopped reading could not take it and
   * would hold its socket (and shutdown) until the grace period ends: it is cut off instead.
   */
  private end(sub: Subscriber, final: FramedOnce | null): 'ended' | 'destroyed' {
    // Asked before end(): an ending stream never reports that it needs a drain.
    const stalled = sub.sink.writableNeedDrain
    if (stalled) {
      sub.sink.destroy()
    } else {
      if (final) sub.sink.write(final.for(sub.framing))
      sub.sink.end(sub.framing.end)
    }
    this.finish(sub)
    return stalled ? 'destroyed' : 'ended'
  }
}
