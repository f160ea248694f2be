import { performance } from 'node:perf_hooks'
import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import {
  Broker,
  type BrokerObserver,
  flushDelay,
  type ResetReason,
} from '../../src/events/broker.js'
import { CHUNKED_FRAMING } from '../../src/events/framing.js'
import { encodeEvent } from '../../src/events/sseEncoding.js'
import { holdReads, MemoryLog } from '../support/memoryLog.js'

/** A socket stand-in that records every chunk; `stalled` makes it stop accepting data. */
class RecordingSink extends Writable {
  chunks: Buffer[] = []
  private waiting: (() => void)[] = []
  constructor(private stalled = false) {
    super({ highWaterMark: 1024 })
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk)
    if (this.stalled) this.waiting.push(cb)
    else cb()
    this.emit('chunk')
  }
  release(): void {
    this.stalled = false
    for (const cb of this.waiting.splice(0)) cb()
  }
  text(): string {
    return Buffer.concat(this.chunks).toString()
  }
  ids(): number[] {
    return [...this.text().matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))
  }
  until(check: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const test = () => {
        if (check()) {
          this.off('chunk', test)
          resolve()
        }
      }
      this.on('chunk', test)
      test()
    })
  }
}

const brokers: Broker[] = []
async function brokerOn(log: MemoryLog, windowSize = 64): Promise<Broker> {
  const broker = new Broker({
    source: log,
    windowSize,
    retryMs: 1000,
    heartbeatMs: 0,
    batchSize: 16,
  })
  await broker.start()
  brokers.push(broker)
  return broker
}
afterEach(() => {
  for (const b of brokers.splice(0)) b.close()
})

/** Sums what a broker reports, the way the metrics do. */
class CountingObserver implements BrokerObserver {
  committedCount = 0
  deliveredCount = 0
  deliveredCalls = 0
  resets: ResetReason[] = []
  destroyed = 0
  committed(count: number): void {
    this.committedCount += count
  }
  delivered(count: number): void {
    this.deliveredCount += count
    this.deliveredCalls++
  }
  reset(reason: ResetReason): void {
    this.resets.push(reason)
  }
  stalledDestroyed(): void {
    this.destroyed++
  }
}

describe('Broker', () => {
  it('lets the event loop run between log pages while a subscriber catches up', async () => {
    // Given a log far longer than the window, read (like the embedded database) without I/O,
    // and a subscriber whose socket takes everything at once
    const log = new MemoryLog()
    log.append(2000)
    const broker = await brokerOn(log, 16)
    await broker.eventsCommitted()
    const greedy = new (class extends RecordingSink {
      constructor() {
        super()
        Object.defineProperty(this, 'writableNeedDrain', { get: () => false })
      }
    })()
    // When it subscribes from the start, and something else waits for the event loop
    void broker.subscribe(greedy, { lastEventId: 0 })
    let deliveredWhenOthersRan = -1
    setImmediate(() => (deliveredWhenOthersRan = greedy.ids().length))
    await greedy.until(() => greedy.ids().length === 2000)
    // Then the other work ran before the catch-up was over (probes are answered meanwhile)
    expect(deliveredWhenOthersRan).toBeGreaterThanOrEqual(0)
    expect(deliveredWhenOthersRan).toBeLessThan(2000)
  })

  it('writes retry, then the greeting, then live events', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log)
    const sink = new RecordingSink()
    void broker.subscribe(sink, {
      greeting: () => ({ type: 'server.state', data: { mode: 'normal' } }),
    })
    log.append(1)
    await broker.eventsCommitted()
    await sink.until(() => sink.ids().length === 1)
    expect(sink.text()).toBe(
      'retry: 1000\n\nevent: server.state\ndata: {"mode":"normal"}\n\n' +
        'id: 1\nevent: item.created\ndata: {"part_number":"P-1"}\n\n',
    )
  })

  it('encodes each event once: every subscriber gets the same bytes', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log)
    const sinks = [new RecordingSink(), new RecordingSink(), new RecordingSink()]
    for (const sink of sinks) void broker.subscribe(sink)
    log.append(1)
    await broker.eventsCommitted()
    await Promise.all(sinks.map((s) => s.until(() => s.ids().length === 1)))
    const eventChunks = sinks.map((s) => s.chunks[s.chunks.length - 1])
    expect(eventChunks[0]).toBe(eventChunks[1])
    expect(eventChunks[1]).toBe(eventChunks[2])
  })

  it('replays from the log beyond the memory window, in order, then continues live', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log, 16)
    log.append(200)
    await broker.eventsCommitted()
    const sink = new RecordingSink()
    void broker.subscribe(sink, { lastEventId: 10 })
    await sink.until(() => sink.ids().length === 190)
    log.append(5)
    await broker.eventsCommitted()
    await sink.until(() => sink.ids().length === 195)
    expect(sink.ids()).toEqual(Array.from({ length: 195 }, (_, i) => i + 11))
  })

  it('shares each catch-up batch between subscribers replaying from the same point', async () => {
    // Given a log far longer than the window (a burst) and two clients behind all of it
    const log = new MemoryLog()
    log.append(200)
    const broker = await brokerOn(log, 16)
    await broker.eventsCommitted()
    const sinks = [new RecordingSink(), new RecordingSink()]
    for (const sink of sinks) void broker.subscribe(sink, { lastEventId: 0 })
    await Promise.all(sinks.map((s) => s.until(() => s.ids().length === 200)))
    // Then both got every event in order, and each batch is one buffer that both were written
    // (made once, not a copy per client)
    const [a, b] = sinks as [RecordingSink, RecordingSink]
    expect(a.ids()).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
    expect(b.ids()).toEqual(a.ids())
    expect(a.chunks.length).toBeGreaterThan(2)
    a.chunks.slice(1).forEach((chunk, i) => expect(chunk).toBe(b.chunks[i + 1]))
  })

  it('holds back a subscriber whose socket does not drain instead of buffering its backlog', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log, 16)
    const sink = new RecordingSink(true)
    void broker.subscribe(sink, { lastEventId: 0 })
    log.append(500)
    await broker.eventsCommitted()
    await sink.until(() => sink.chunks.length > 0)
    // One batch at most is in flight while the socket is stalled.
    expect(sink.writableLength).toBeLessThan(16 * 200)
    sink.release()
    await sink.until(() => sink.ids().length === 500)
    expect(sink.ids()).toEqual(Array.from({ length: 500 }, (_, i) => i + 1))
  })

  it('sends stream.reset when the cursor is behind retention and resumes at the head', async () => {
    const log = new MemoryLog()
    log.append(50)
    log.prune(40)
    const broker = await brokerOn(log)
    const sink = new RecordingSink()
    void broker.subscribe(sink, { lastEventId: 5 })
    await sink.until(() => sink.text().includes('stream.reset'))
    log.append(1)
    await broker.eventsCommitted()
    await sink.until(() => sink.ids().length === 2)
    expect(sink.text()).toContain(
      'id: 50\nevent: stream.reset\ndata: {"last_event_id":5,"oldest_available_id":41}',
    )
    expect(sink.ids()).toEqual([50, 51])
  })

  it('resets at the newest commit, including commits still being read in when it connects', async () => {
    const log = new MemoryLog()
    log.append(50)
    log.prune(40)
    const broker = await brokerOn(log)
    const { release, readAfter } = holdReads(log)
    log.append(2)
    const reading = broker.eventsCommitted()
    const sink = new RecordingSink()
    void broker.subscribe(sink, { lastEventId: 5 })
    release()
    await reading
    log.readAfter = readAfter
    await sink.until(() => sink.text().includes('stream.reset'))
    log.append(1)
    await broker.eventsCommitted()
    await sink.until(() => sink.ids().includes(53))
    expect(sink.ids()).toEqual([52, 53])
  })

  it('applies type and part-number filters but advances past what it skips', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log)
    const sink = new RecordingSink()
    void broker.subscribe(sink, { filter: { partNumber: 'P-3' } })
    log.append(5)
    await broker.eventsCommitted()
    await sink.until(() => sink.ids().length === 1)
    expect(sink.ids()).toEqual([3])
  })

  it('ends every subscription on close with a final event and turns new ones away', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log)
    const sink = new RecordingSink()
    const done = broker.subscribe(sink)
    broker.close({ type: 'server.state', data: { mode: 'shutting-down' } })
    await done
    expect(sink.text()).toMatch(/event: server.state\ndata: {"mode":"shutting-down"}\n\n$/)
    expect(sink.writableEnded).toBe(true)
    const late = new RecordingSink()
    await broker.subscribe(late)
    expect(late.text()).toBe('retry: 1000\n\n')
    expect(late.writableEnded).toBe(true)
    expect(broker.subscriberCount).toBe(0)
  })

  it('ends only the subscriptions of the owners picked, each after the final event, and lets the rest run on', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log)
    const [first, second, other] = [new RecordingSink(), new RecordingSink(), new RecordingSink()]
    const ended = [
      broker.subscribe(first, { owner: 7 }),
      broker.subscribe(second, { owner: 7, lastEventId: 0 }),
    ]
    void broker.subscribe(other, { owner: 8 })
    // When the owner 7's subscriptions are closed
    const count = broker.closeWhere((owner) => owner === 7, {
      type: 'stream.closed',
      data: { reason: 'token_revoked' },
    })
    await Promise.all(ended)
    // Then both end with the final event as the last thing written
    expect(count).toBe(2)
    for (const sink of [first, second]) {
      expect(sink.text()).toMatch(/event: stream.closed\ndata: {"reason":"token_revoked"}\n\n$/)
      expect(sink.writableEnded).toBe(true)
    }
    // And later events reach only the other owner's stream
    log.append(1)
    await broker.eventsCommitted()
    await other.until(() => other.ids().length === 1)
    for (const sink of [first, second]) expect(sink.ids()).toEqual([])
    expect(other.text()).not.toContain('stream.closed')
    expect(broker.subscriberCount).toBe(1)
    // And closing again finds nothing left to end
    expect(broker.closeWhere((owner) => owner === 7, { type: 'stream.closed', data: {} })).toBe(0)
  })

  it('cuts off a picked subscriber that stopped reading instead of queueing its final event', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log, 16)
    const stalled = new RecordingSink(true)
    const reading = new RecordingSink()
    const ended = broker.subscribe(stalled, { owner: 'stalled', lastEventId: 0 })
    void broker.subscribe(reading, { lastEventId: 0 })
    log.append(200)
    await broker.eventsCommitted()
    await reading.until(() => reading.ids().length === 200)
    expect(stalled.writableNeedDrain).toBe(true)
    broker.closeWhere((owner) => owner === 'stalled', { type: 'stream.closed', data: {} })
    await ended
    expect(stalled.destroyed).toBe(true)
    expect(reading.destroyed).toBe(false)
    expect(broker.subscriberCount).toBe(1)
  })

  it('settles a subscription it cannot open without rejecting: it reports why and cuts the socket off', async () => {
    // Given a broker that reports its failures, and a greeting that throws
    const log = new MemoryLog()
    const failures: string[] = []
    const broker = new Broker({
      source: log,
      windowSize: 64,
      retryMs: 1000,
      heartbeatMs: 0,
      onError: (_err, context) => failures.push(context),
    })
    await broker.start()
    brokers.push(broker)
    const sink = new RecordingSink()
    // When a client subscribes
    await broker.subscribe(sink, {
      greeting: () => {
        throw new Error('no mode to greet with')
      },
    })
    // Then the failure is reported, the client is cut off (it reconnects), and nothing stays
    expect(failures).toEqual(['opening an event stream failed'])
    expect(sink.destroyed).toBe(true)
    expect(broker.subscriberCount).toBe(0)
  })

  it('shares one log read between concurrent wake-ups', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log)
    log.append(3)
    const before = log.reads
    await Promise.all([
      broker.eventsCommitted(),
      broker.eventsCommitted(),
      broker.eventsCommitted(),
    ])
    expect(broker.latestId).toBe(3)
    // One read for the events, one re-read for the callers that arrived meanwhile.
    expect(log.reads - before).toBeLessThanOrEqual(2)
  })
})

describe('Broker observer', () => {
  it('reports each event published once and delivered once per subscriber that gets it, per batch', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log)
    const counts = new CountingObserver()
    broker.observe(counts)
    const all = [new RecordingSink(), new RecordingSink()]
    const filtered = new RecordingSink()
    for (const sink of all) void broker.subscribe(sink)
    void broker.subscribe(filtered, { filter: { partNumber: 'P-2' } })
    log.append(40)
    await broker.eventsCommitted()
    await Promise.all(all.map((s) => s.until(() => s.ids().length === 40)))
    await filtered.until(() => filtered.ids().length === 1)
    expect(counts.committedCount).toBe(40)
    expect(counts.deliveredCount).toBe(40 + 40 + 1)
    // Batches of 16: three writes for each full stream, one for the filtered one.
    expect(counts.deliveredCalls).toBeLessThanOrEqual(3 + 3 + 1)
  })

  it('reports why it sent each stream.reset', async () => {
    const log = new MemoryLog()
    log.append(50)
    log.prune(40)
    const broker = await brokerOn(log, 16)
    const counts = new CountingObserver()
    broker.observe(counts)

    const pruned = new RecordingSink()
    void broker.subscribe(pruned, { lastEventId: 5 })
    await pruned.until(() => pruned.text().includes('stream.reset'))
    const unknown = new RecordingSink()
    void broker.subscribe(unknown, { lastEventId: 999 })
    await unknown.until(() => unknown.text().includes('stream.reset'))
    expect(counts.resets).toEqual(['last_event_id_pruned', 'last_event_id_unknown'])

    // A live subscriber that stops reading while retention moves past what it was sent.
    const slow = new RecordingSink(true)
    void broker.subscribe(slow)
    log.append(500)
    await broker.eventsCommitted()
    await slow.until(() => slow.chunks.length > 0)
    // The two earlier subscribers read on; only the stalled one may fall behind.
    for (const reader of [pruned, unknown]) await reader.until(() => reader.ids().includes(550))
    log.prune(400)
    broker.notePruned(400)
    slow.release()
    await slow.until(() => slow.text().includes('stream.reset'))
    expect(counts.resets).toEqual(['last_event_id_pruned', 'last_event_id_unknown', 'fell_behind'])
  })

  it('reports a stalled subscriber it cuts off at close', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log, 16)
    const counts = new CountingObserver()
    broker.observe(counts)
    const stalled = new RecordingSink(true)
    const reading = new RecordingSink()
    void broker.subscribe(stalled, { lastEventId: 0 })
    void broker.subscribe(reading, { lastEventId: 0 })
    log.append(200)
    await broker.eventsCommitted()
    await reading.until(() => reading.ids().length === 200)
    await stalled.until(() => stalled.writableNeedDrain)
    broker.close()
    expect(stalled.destroyed).toBe(true)
    expect(reading.destroyed).toBe(false)
    expect(counts.destroyed).toBe(1)
  })

  it('reports nothing once the observer is detached', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log)
    const counts = new CountingObserver()
    const detach = broker.observe(counts)
    detach()
    const sink = new RecordingSink()
    void broker.subscribe(sink)
    log.append(3)
    await broker.eventsCommitted()
    await sink.until(() => sink.ids().length === 3)
    expect([counts.committedCount, counts.deliveredCount]).toEqual([0, 0])
  })

  it('takes locally committed events without reading them back, and reads when ids skip', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log)
    const sink = new RecordingSink()
    void broker.subscribe(sink, {})
    log.append(2)
    const readsBefore = log.reads
    await broker.eventsCommitted(log.events.slice(0, 2))
    await sink.until(() => sink.ids().length === 2)
    expect(log.reads).toBe(readsBefore)
    // Id 3 went to a rolled-back transaction: 4 does not follow 2, so the log is read instead.
    log.append(2)
    log.events = log.events.filter((e) => e.id !== 3)
    await broker.eventsCommitted(log.events.slice(-1))
    await sink.until(() => sink.ids().length === 3)
    expect(log.reads).toBeGreaterThan(readsBefore)
    // Events already taken are not delivered twice when a read returns them again.
    await broker.eventsCommitted()
    await broker.eventsCommitted(log.events.slice(0, 2))
    expect(sink.ids()).toEqual([1, 2, 4])
  })
  it('sends events committed in the same turn in one write per subscriber, with chunk framing', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log)
    const chunked = new RecordingSink()
    const filtered = new RecordingSink()
    void broker.subscribe(chunked, { framing: CHUNKED_FRAMING })
    void broker.subscribe(filtered, { filter: { partNumber: 'P-2' } })
    await Promise.resolve()
    const before = [chunked.chunks.length, filtered.chunks.length]
    log.append(3)
    for (const event of log.events) void broker.eventsCommitted([event])
    await chunked.until(() => chunked.chunks.length > (before[0] as number))
    await filtered.until(() => filtered.ids().length === 1)
    expect(chunked.chunks.length - (before[0] as number)).toBe(1)
    const body = (chunked.chunks[chunked.chunks.length - 1] as Buffer).toString()
    const events = log.events.map((e) => encodeEvent({ id: e.id, type: e.type, data: e.data }))
    const payload = Buffer.concat(events)
    expect(body).toBe(`${payload.length.toString(16)}\r\n${payload.toString()}\r\n`)
    expect(filtered.chunks.length - (before[1] as number)).toBe(1)
    expect(filtered.ids()).toEqual([2])
  })

  // Each write takes 0.5 ms, as a busy kernel might: 100 subscribers take 50 ms in all.
  class SlowSink extends RecordingSink {
    override _write(chunk: Buffer, enc: BufferEncoding, cb: () => void): void {
      const until = performance.now() + 0.5
      while (performance.now() < until);
      super._write(chunk, enc, cb)
    }
  }

  it('lets other work run between slices of a flush over many subscribers', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log)
    const sinks = Array.from({ length: 100 }, () => new SlowSink())
    for (const sink of sinks) void broker.subscribe(sink)
    log.append(1)
    await broker.eventsCommitted(log.events)
    const servedBeforeOthers = await new Promise<number>((resolve) =>
      setImmediate(() => resolve(sinks.filter((s) => s.ids().length === 1).length)),
    )
    expect(servedBeforeOthers).toBeGreaterThan(0)
    expect(servedBeforeOthers).toBeLessThan(100)
    await Promise.all(sinks.map((s) => s.until(() => s.ids().length === 1)))
  })

  it('lets other work run between slices of a heartbeat to many subscribers', async () => {
    const log = new MemoryLog()
    const broker = new Broker({ source: log, windowSize: 64, retryMs: 1000, heartbeatMs: 50 })
    await broker.start()
    brokers.push(broker)
    const sinks = Array.from({ length: 100 }, () => new SlowSink())
    for (const sink of sinks) void broker.subscribe(sink)
    const beat = (sink: RecordingSink) => sink.text().includes('event: heartbeat')
    await (sinks[0] as SlowSink).until(() => beat(sinks[0] as SlowSink))
    const beatenBeforeOthers = await new Promise<number>((resolve) =>
      setImmediate(() => resolve(sinks.filter(beat).length)),
    )
    expect(beatenBeforeOthers).toBeGreaterThan(0)
    expect(beatenBeforeOthers).toBeLessThan(100)
    await Promise.all(sinks.map((s) => s.until(() => beat(s))))
  })

  it('starts a stream without an id after the commits still being read in when it connects', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log)
    // A read of the log that has not come back yet (events another commit made visible).
    const { release, readAfter } = holdReads(log)
    log.append(2)
    const reading = broker.eventsCommitted()
    // A commit answered meanwhile goes through that read.
    void broker.eventsCommitted(log.events.slice(1))
    const sink = new RecordingSink()
    void broker.subscribe(sink)
    release()
    await reading
    log.readAfter = readAfter
    log.append(1)
    await broker.eventsCommitted()
    await sink.until(() => sink.ids().length > 0)
    expect(sink.ids()).toEqual([3])
  })

  it('delivers what a client changes after its greeting, even while commits are being read in', async () => {
    const log = new MemoryLog()
    const broker = await brokerOn(log)
    const { release, readAfter } = holdReads(log)
    log.append(2)
    const reading = broker.eventsCommitted()
    const sink = new RecordingSink()
    void broker.subscribe(sink, { greeting: () => ({ type: 'server.state', data: {} }) })
    // Given a client that writes as soon as it has seen its greeting
    const wrote = sink
      .until(() => sink.text().includes('server.state'))
      .then(() => {
        log.append(1)
        return broker.eventsCommitted(log.events.slice(-1))
      })
    // When the read in progress comes back
    release()
    await reading
    await wrote
    log.readAfter = readAfter
    log.append(1)
    await broker.eventsCommitted(log.events.slice(-1))
    // Then its own change reaches it, before the next one
    await sink.until(() => sink.ids().includes(4))
    expect(sink.ids()).toEqual([3, 4])
  })
})

describe('flush pacing', () => {
  it('gives the fan-out half of a busy loop, and a sixth once writes come faster than passes', () => {
    // A pass that began at 100 ms and wrote for 5 ms.
    expect(flushDelay({ at: 100, busy: 5, events: 1 }, 106)).toBe(4)
    expect(flushDelay({ at: 100, busy: 5, events: 3 }, 106)).toBe(4)
    expect(flushDelay({ at: 100, busy: 5, events: 4 }, 106)).toBe(24)
    // A quiet server: the last pass is long over, the next starts at once.
    expect(flushDelay({ at: 100, busy: 5, events: 50 }, 1000)).toBeLessThan(1)
  })
})
