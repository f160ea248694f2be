import { describe, expect, it } from 'vitest'
import {
  type Connection,
  EventStream,
  type EventSourceLike,
  type ServerMode,
  type StoredEvent,
} from '../src/eventStream.ts'

/** Stands in for the browser's EventSource: the tests play the server's side of it. */
class ScriptedSource implements EventSourceLike {
  readyState = 0
  onerror: ((ev: Event) => unknown) | null = null
  closed = false
  private listeners = new Map<string, ((ev: MessageEvent<string>) => void)[]>()
  constructor(readonly url: string) {}
  addEventListener(type: string, listener: (ev: MessageEvent<string>) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener])
  }
  close(): void {
    this.closed = true
    this.readyState = 2
  }
  /** The response head arrived, then the greeting (the server's current mode). */
  opened(mode = 'normal'): void {
    this.readyState = 1
    this.send('server.state', { mode })
  }
  send(type: string, data: unknown, id?: number): void {
    const ev = { data: JSON.stringify(data), lastEventId: id === undefined ? '' : String(id) }
    for (const l of this.listeners.get(type) ?? []) l(ev as MessageEvent<string>)
  }
  /** The connection dropped; `gaveUp` as EventSource does on a non-200 answer. */
  failed(gaveUp = false): void {
    this.readyState = gaveUp ? 2 : 0
    this.onerror?.(new Event('error'))
  }
}

function harness(options: { signedIn?: boolean; online?: boolean } = {}) {
  const sources: ScriptedSource[] = []
  const events: StoredEvent[] = []
  const resets: unknown[] = []
  const closed: string[] = []
  const statuses: [Connection, ServerMode | null][] = []
  const timers: (() => void)[] = []
  let online = options.online ?? true
  const stream = new EventStream(
    {
      url: '/api/events',
      storedTypes: ['item.created', 'item.updated'],
      open: (url) => {
        const source = new ScriptedSource(url)
        sources.push(source)
        return source
      },
      stillSignedIn: async () => options.signedIn ?? true,
      online: () => online,
      setTimer: (fn) => timers.push(fn),
      clearTimer: () => {},
    },
    {
      event: (e) => events.push(e),
      reset: (r) => resets.push(r),
      closed: (reason) => closed.push(reason),
      status: (c, m) => statuses.push([c, m]),
    },
  )
  const last = () => sources[sources.length - 1] as ScriptedSource
  const setOnline = (value: boolean) => {
    online = value
    stream.networkChanged()
  }
  return { stream, sources, last, events, resets, closed, statuses, timers, setOnline }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0))

describe('the console event stream', () => {
  it('reports live with the mode from the greeting, then hands on stored events in order', () => {
    const h = harness()
    h.stream.start()
    // The response head alone is not live yet: the stream starts where the greeting is written.
    h.last().readyState = 1
    expect(h.statuses).toEqual([])
    h.last().send('server.state', { mode: 'normal' })
    h.last().send('item.created', { part_number: 'P-1' }, 1)
    h.last().send('item.updated', { part_number: 'P-1', description: 'x' }, 2)
    expect(h.last().url).toBe('/api/events')
    expect(h.statuses).toEqual([['live', 'normal']])
    expect(h.events.map((e) => [e.id, e.type])).toEqual([
      [1, 'item.created'],
      [2, 'item.updated'],
    ])
  })

  it('hands on nothing twice across the seam of a reconnect', () => {
    const h = harness()
    h.stream.start()
    h.last().opened()
    h.last().send('item.created', { part_number: 'P-1' }, 1)
    h.last().send('item.created', { part_number: 'P-2' }, 2)
    h.last().failed()
    h.last().opened()
    h.last().send('item.created', { part_number: 'P-2' }, 2)
    h.last().send('item.created', { part_number: 'P-3' }, 3)
    expect(h.events.map((e) => e.id)).toEqual([1, 2, 3])
    expect(h.statuses.map(([c]) => c)).toEqual(['live', 'reconnecting', 'live'])
  })

  it('keeps "shutting-down" while the server it heard it from comes back', () => {
    const h = harness()
    h.stream.start()
    h.last().opened()
    h.last().send('server.state', { mode: 'shutting-down' })
    h.last().failed()
    expect(h.statuses[h.statuses.length - 1]).toEqual(['reconnecting', 'shutting-down'])
    h.last().opened('normal')
    expect(h.statuses[h.statuses.length - 1]).toEqual(['live', 'normal'])
  })

  it('opens a new stream after the last id it saw when EventSource gives up', async () => {
    const h = harness()
    h.stream.start()
    h.last().opened()
    h.last().send('item.created', { part_number: 'P-7' }, 7)
    h.last().failed(true)
    await settle()
    expect(h.sources).toHaveLength(1)
    h.timers.shift()?.()
    expect(h.sources).toHaveLength(2)
    expect(h.last().url).toBe('/api/events?last_event_id=7')
  })

  it('ends for good with "signed_out" when the session is gone', async () => {
    const h = harness({ signedIn: false })
    h.stream.start()
    h.last().opened()
    h.last().failed(true)
    await settle()
    expect(h.closed).toEqual(['signed_out'])
    expect(h.timers).toHaveLength(0)
  })

  it('stops on stream.closed with its reason and does not reconnect', () => {
    const h = harness()
    h.stream.start()
    h.last().opened()
    h.last().send('stream.closed', { reason: 'token_revoked' })
    h.last().failed(true)
    expect(h.closed).toEqual(['token_revoked'])
    expect(h.sources[0]?.closed).toBe(true)
    expect(h.sources).toHaveLength(1)
  })

  it('passes a reset on and resumes after the id it carries', async () => {
    const h = harness()
    h.stream.start(3)
    expect(h.last().url).toBe('/api/events?last_event_id=3')
    h.last().opened()
    h.last().send('stream.reset', { last_event_id: 3, oldest_available_id: 50 }, 90)
    h.last().send('item.created', { part_number: 'P-90' }, 90)
    h.last().send('item.created', { part_number: 'P-91' }, 91)
    expect(h.resets).toEqual([{ last_event_id: 3, oldest_available_id: 50 }])
    expect(h.events.map((e) => e.id)).toEqual([91])
  })

  it('says offline when the browser is, and reconnects at once when it is back', () => {
    const h = harness()
    h.stream.start()
    h.last().opened()
    h.setOnline(false)
    h.last().failed()
    expect(h.statuses[h.statuses.length - 1]?.[0]).toBe('offline')
    h.setOnline(true)
    expect(h.sources).toHaveLength(2)
    expect(h.sources[0]?.closed).toBe(true)
  })
})
