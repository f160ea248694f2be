import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  EVENT_TYPES as CATALOGUE_TYPES,
  type EventType as CatalogueEventType,
} from '../../src/events/catalogue.js'

/**
 * A load client for SSE fan-out: many raw TCP connections that speak just enough HTTP/1.1 and
 * SSE to note, for every event that carries an `id:`, its id, its type and when the socket
 * delivered it. Parsing is a byte-level state machine (chunked framing and SSE lines in one
 * pass): no strings, no objects and no timers per event, one clock read per socket read, and
 * records go into preallocated typed arrays, so the client stays cheap next to the server it
 * shares the machine with.
 */

/**
 * Event types told apart: the catalogue's, plus `message` for an event without `event:` and
 * `other` for any unknown name.
 */
export type EventType = 'message' | CatalogueEventType | 'other'
export const EVENT_TYPES: readonly EventType[] = ['message', ...CATALOGUE_TYPES, 'other']

export function typeIndex(type: EventType): number {
  return EVENT_TYPES.indexOf(type)
}

const MESSAGE = typeIndex('message')
const OTHER = typeIndex('other')

function hashName(name: string): number {
  let hash = 0
  for (const byte of Buffer.from(name, 'utf8')) hash = (Math.imul(hash, 31) + byte) | 0
  return hash
}

const TYPE_BY_HASH = new Map<number, number>()
EVENT_TYPES.forEach((type, i) => {
  if (i !== MESSAGE && i !== OTHER) TYPE_BY_HASH.set(hashName(type), i)
})

// What the current SSE line is, once its field name has been read.
const FIELD_NAME = 0
const FIELD_ID = 1
const FIELD_EVENT = 2
const FIELD_DATA = 3
const FIELD_IGNORED = 4
const FIELD_BY_HASH = new Map([
  [hashName('id'), FIELD_ID],
  [hashName('event'), FIELD_EVENT],
  [hashName('data'), FIELD_DATA],
])

// Where the chunked transfer decoder is.
const CHUNK_SIZE = 0
const CHUNK_EXTENSION = 1
const CHUNK_SIZE_LF = 2
const CHUNK_DATA = 3
const CHUNK_DATA_CR = 4
const CHUNK_DATA_LF = 5
const CHUNK_LAST = 6

const LF = 0x0a
const CR = 0x0d
const COLON = 0x3a
const SPACE = 0x20

const ID_PREFIX = Buffer.from('id: ')
const EVENT_PREFIX = Buffer.from('event: ')
const DATA_PREFIX = Buffer.from('data: ')

/** Whether `data` holds `prefix` at `at`; its first byte the caller has already compared. */
function startsWith(data: Buffer, at: number, prefix: Buffer): boolean {
  for (let k = 1; k < prefix.length; k++) if (data[at + k] !== prefix[k]) return false
  return true
}

function hexDigit(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x41 + 10
  return 0
}

/** What connections report to: the clock origin and which event type is being counted. */
export interface Tally {
  /** performance.now() at the start of the phase; record times are relative to it. */
  epoch: number
  /** typeIndex() of the counted type. */
  countedType: number
  /** A connection that has counted this many events calls reached() once. */
  target: number
  reached(connection: SseConnection): void
  closed(connection: SseConnection): void
}

/** An event with its data, for the few connections that ask for it (they allocate). */
export interface CapturedEvent {
  id: number | undefined
  type: EventType
  data: string
}

export interface ConnectionOptions {
  baseUrl: string
  token?: string
  lastEventId?: number
  query?: Record<string, string>
  /** Called with every event's data as a string; for a reference reader, not for the load. */
  onEvent?: (event: CapturedEvent) => void
}

/** One SSE connection on a raw socket. */
export class SseConnection {
  status = 0
  headers: Record<string, string> = {}
  closed = false
  /** Records of the events that carried an id, in arrival order. */
  count = 0
  ids: Float64Array
  types: Uint8Array
  /** Milliseconds since the tally's epoch when the socket delivered the event. */
  times: Float32Array
  /** Events of the tally's counted type since the last reset. */
  counted = 0
  /** Every event received (with or without id), by typeIndex, since the connection opened. */
  readonly typeCounts = new Uint32Array(EVENT_TYPES.length)
  /** Resolves with the status once the response head has arrived. */
  readonly response: Promise<number>
  readonly socket: Socket
  private head: Buffer | null = Buffer.alloc(0)
  private chunked = false
  private chunkState = CHUNK_SIZE
  private chunkSize = 0
  private chunkRemaining = 0
  private field = FIELD_NAME
  private nameHash = 0
  private lineLength = 0
  private skipSpace = false
  /** An id:, event: or data: line was seen since the last blank line. */
  private eventHasFields = false
  private eventHasId = false
  private eventId = 0
  private eventHasType = false
  private eventTypeHash = 0
  private readonly onEvent: ((event: CapturedEvent) => void) | undefined
  private dataBytes: number[] = []

  constructor(
    private readonly tally: Tally,
    options: ConnectionOptions,
    capacity = 1024,
  ) {
    this.ids = new Float64Array(capacity)
    this.types = new Uint8Array(capacity)
    this.times = new Float32Array(capacity)
    this.onEvent = options.onEvent
    const url = new URL('/api/events', options.baseUrl)
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v)
    const lines = [
      `GET ${url.pathname}${url.search} HTTP/1.1`,
      `Host: ${url.host}`,
      'Accept: text/event-stream',
    ]
    if (options.token) lines.push(`Authorization: Bearer ${options.token}`)
    if (options.lastEventId !== undefined) lines.push(`Last-Event-ID: ${options.lastEventId}`)
    this.socket = connect(Number(url.port), url.hostname)
    this.socket.write(`${lines.join('\r\n')}\r\n\r\n`)
    this.response = new Promise((resolve, reject) => {
      this.socket.on('data', (data: Buffer) => {
        const now = performance.now() - this.tally.epoch
        if (this.head) {
          this.readHead(data, now)
          if (!this.head) resolve(this.status)
        } else {
          this.readBody(data, 0, now)
        }
      })
      this.socket.on('error', (err) => reject(err))
      this.socket.on('close', () => {
        this.closed = true
        reject(new Error('connection closed before the response head'))
        this.tally.closed(this)
      })
    })
    // A rejection nobody awaits (a connection that dies after its head) is not an error here.
    this.response.catch(() => {})
  }

  /** Forgets the records (a new phase) and makes room for `capacity` of them. */
  reset(capacity: number): void {
    this.count = 0
    this.counted = 0
    if (this.ids.length < capacity) {
      this.ids = new Float64Array(capacity)
      this.types = new Uint8Array(capacity)
      this.times = new Float32Array(capacity)
    }
  }

  close(): void {
    this.socket.destroy()
  }

  private readHead(data: Buffer, now: number): void {
    const head = Buffer.concat([this.head as Buffer, data])
    const end = head.indexOf('\r\n\r\n')
    if (end < 0) {
      this.head = head
      return
    }
    const [statusLine, ...headerLines] = head.subarray(0, end).toString('latin1').split('\r\n')
    this.status = Number(statusLine?.split(' ')[1])
    for (const line of headerLines) {
      const colon = line.indexOf(':')
      this.headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    this.chunked = /\bchunked\b/i.test(this.headers['transfer-encoding'] ?? '')
    this.head = null
    if (end + 4 < head.length) this.readBody(head, end + 4, now)
  }

  private readBody(data: Buffer, start: number, now: number): void {
    if (!this.chunked) {
      this.readEvents(data, start, data.length, now)
      return
    }
    const length = data.length
    let i = start
    while (i < length) {
      switch (this.chunkState) {
        case CHUNK_SIZE: {
          const byte = data[i++] as number
          if (byte === CR) this.chunkState = CHUNK_SIZE_LF
          else if (byte === 0x3b) this.chunkState = CHUNK_EXTENSION
          else this.chunkSize = this.chunkSize * 16 + hexDigit(byte)
          break
        }
        case CHUNK_EXTENSION:
          if (data[i++] === CR) this.chunkState = CHUNK_SIZE_LF
          break
        case CHUNK_SIZE_LF:
          i++
          if (this.chunkSize === 0) {
            this.chunkState = CHUNK_LAST
            return
          }
          this.chunkRemaining = this.chunkSize
          this.chunkSize = 0
          this.chunkState = CHUNK_DATA
          break
        case CHUNK_DATA: {
          const end = Math.min(length, i + this.chunkRemaining)
          this.readEvents(data, i, end, now)
          this.chunkRemaining -= end - i
          i = end
          if (this.chunkRemaining === 0) this.chunkState = CHUNK_DATA_CR
          break
        }
        case CHUNK_DATA_CR:
          i++
          this.chunkState = CHUNK_DATA_LF
          break
        case CHUNK_DATA_LF:
          i++
          this.chunkState = CHUNK_SIZE
          break
        default:
          return
      }
    }
  }

  /** SSE lines: only `id:` (as a number) and `event:` (as a hash) are looked at. */
  private readEvents(data: Buffer, start: number, end: number, now: number): void {
    for (let i = start; i < end; i++) {
      if (this.field === FIELD_NAME && this.lineLength === 0 && !this.onEvent) {
        const next = this.wholeLine(data, i, end, now)
        if (next >= 0) {
          i = next - 1
          continue
        }
      }
      const byte = data[i] as number
      if (byte === LF) {
        this.endLine(now)
        continue
      }
      if (byte === CR) continue
      if (this.field === FIELD_NAME) {
        if (byte === COLON) {
          this.field =
            this.lineLength === 0
              ? FIELD_IGNORED
              : (FIELD_BY_HASH.get(this.nameHash) ?? FIELD_IGNORED)
          if (this.field !== FIELD_IGNORED) this.eventHasFields = true
          this.skipSpace = true
        } else {
          this.nameHash = (Math.imul(this.nameHash, 31) + byte) | 0
        }
        this.lineLength++
        continue
      }
      if (this.skipSpace) {
        this.skipSpace = false
        if (byte === SPACE) continue
      }
      if (this.field === FIELD_IGNORED || (this.field === FIELD_DATA && !this.onEvent)) {
        // Most bytes are data: jump to the end of the line (memchr) instead of looking at each.
        const lineEnd = data.indexOf(LF, i)
        i = (lineEnd < 0 || lineEnd >= end ? end : lineEnd) - 1
        continue
      }
      switch (this.field) {
        case FIELD_ID:
          this.eventId = this.eventId * 10 + (byte - 0x30)
          this.eventHasId = true
          break
        case FIELD_EVENT:
          this.eventTypeHash = (Math.imul(this.eventTypeHash, 31) + byte) | 0
          this.eventHasType = true
          break
        case FIELD_DATA:
          if (this.onEvent) this.dataBytes.push(byte)
          break
        default:
          break
      }
    }
  }

  /**
   * Reads a line that lies whole in `data` from `i` (a line start) and is one of the three silo
   * and the peers send: `id: `, `event: `, `data: `, or the blank line; returns where the next
   * line starts, or -1 to leave it to the byte-by-byte reader (any other line, or one cut by
   * the end of the read). Most lines are these, and finding their end is one memchr.
   */
  private wholeLine(data: Buffer, i: number, end: number, now: number): number {
    const first = data[i] as number
    if (first === LF) {
      this.dispatch(now)
      return i + 1
    }
    const lf = data.indexOf(LF, i)
    if (lf < 0 || lf >= end) return -1
    const last = data[lf - 1] === CR ? lf - 1 : lf
    if (first === 0x64 && startsWith(data, i, DATA_PREFIX)) {
      this.eventHasFields = true
    } else if (first === 0x69 && startsWith(data, i, ID_PREFIX)) {
      let id = 0
      for (let k = i + ID_PREFIX.length; k < last; k++) id = id * 10 + ((data[k] as number) - 0x30)
      this.eventId = id
      this.eventHasId = this.eventHasFields = true
    } else if (first === 0x65 && startsWith(data, i, EVENT_PREFIX)) {
      let hash = 0
      for (let k = i + EVENT_PREFIX.length; k < last; k++) {
        hash = (Math.imul(hash, 31) + (data[k] as number)) | 0
      }
      this.eventTypeHash = hash
      this.eventHasType = this.eventHasFields = true
    } else {
      return -1
    }
    return lf + 1
  }

  private endLine(now: number): void {
    const blank = this.field === FIELD_NAME && this.lineLength === 0
    if (this.field === FIELD_DATA && this.onEvent && this.dataBytes.length > 0) {
      // Several data: lines join with a newline (none of silo's events has more than one).
      this.dataBytes.push(LF)
    }
    this.field = FIELD_NAME
    this.nameHash = 0
    this.lineLength = 0
    this.skipSpace = false
    if (blank) this.dispatch(now)
  }

  private dispatch(now: number): void {
    // A blank line after only comments or retry: is not an event.
    if (!this.eventHasFields) return
    this.eventHasFields = false
    const type = this.eventHasType ? (TYPE_BY_HASH.get(this.eventTypeHash) ?? OTHER) : MESSAGE
    this.typeCounts[type] = (this.typeCounts[type] as number) + 1
    if (this.eventHasId) {
      if (this.count === this.ids.length) this.grow()
      const at = this.count++
      this.ids[at] = this.eventId
      this.types[at] = type
      this.times[at] = now
      if (type === this.tally.countedType && ++this.counted === this.tally.target) {
        this.tally.reached(this)
      }
    }
    if (this.onEvent) {
      const bytes = this.dataBytes
      if (bytes[bytes.length - 1] === LF) bytes.pop()
      this.onEvent({
        id: this.eventHasId ? this.eventId : undefined,
        type: EVENT_TYPES[type] as EventType,
        data: Buffer.from(bytes).toString('utf8'),
      })
      this.dataBytes = []
    }
    this.eventHasId = false
    this.eventId = 0
    this.eventHasType = false
    this.eventTypeHash = 0
  }

  private grow(): void {
    const size = this.ids.length * 2
    const ids = new Float64Array(size)
    const types = new Uint8Array(size)
    const times = new Float32Array(size)
    ids.set(this.ids)
    types.set(this.types)
    times.set(this.times)
    this.ids = ids
    this.types = types
    this.times = times
  }
}

export interface OpenResult {
  opened: number
  /** Connections refused or answered with another status than 200, by reason. */
  failures: Map<string, number>
  ms: number
}

/**
 * N SSE connections to one server, counted together. A benchmark phase calls beginPhase(),
 * makes the server publish, waits with waitUntilAllReached() and then reads each connection's
 * records.
 */
export class SseLoad implements Tally {
  readonly connections: SseConnection[] = []
  epoch = performance.now()
  countedType = typeIndex('item.created')
  target = Number.MAX_SAFE_INTEGER
  /** Connections that have counted `target` events in this phase. */
  reachedCount = 0
  /** Connections that have closed (by the server or the network) since they opened. */
  closedCount = 0
  private closing = false

  constructor(private readonly options: Omit<ConnectionOptions, 'onEvent' | 'lastEventId'>) {}

  /** Opens `count` more connections, at most `concurrency` at a time in the handshake. */
  async open(count: number, concurrency = 100, capacity = 1024): Promise<OpenResult> {
    const started = performance.now()
    const failures = new Map<string, number>()
    const fail = (reason: string) => failures.set(reason, (failures.get(reason) ?? 0) + 1)
    let next = 0
    let opened = 0
    const worker = async () => {
      while (next < count) {
        next++
        const connection = new SseConnection(this, this.options, capacity)
        this.connections.push(connection)
        try {
          const status = await connection.response
          if (status === 200) opened++
          else {
            fail(`HTTP ${status}`)
            connection.close()
          }
        } catch (err) {
          fail((err as NodeJS.ErrnoException).code ?? (err as Error).message)
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
    return { opened, failures, ms: performance.now() - started }
  }

  /** Connections that are still open. */
  get openCount(): number {
    return this.connections.length - this.closedCount
  }

  /** Milliseconds since the current phase began. */
  now(): number {
    return performance.now() - this.epoch
  }

  /** Starts a phase: clears every record, restarts the clock, counts `type` up to `target`. */
  beginPhase(type: EventType, target: number): void {
    for (const connection of this.connections) connection.reset(target + 64)
    this.countedType = typeIndex(type)
    this.target = target
    this.reachedCount = 0
    this.epoch = performance.now()
  }

  /** Events of the counted type received in this phase over all connections. */
  get counted(): number {
    let total = 0
    for (const connection of this.connections) total += connection.counted
    return total
  }

  /**
   * Resolves true once every open connection has counted `target` events, or false when no
   * connection has received anything new for `stallMs`.
   */
  async waitUntilAllReached(stallMs: number, pollMs = 25): Promise<boolean> {
    let last = -1
    let lastProgress = performance.now()
    for (;;) {
      if (this.reachedCount >= this.openCount && this.openCount > 0) return true
      const counted = this.counted
      if (counted !== last) {
        last = counted
        lastProgress = performance.now()
      } else if (performance.now() - lastProgress > stallMs) {
        return false
      }
      await sleep(pollMs)
    }
  }

  /** Sum of typeCounts over every connection. */
  typeTotals(): Uint32Array {
    const totals = new Uint32Array(EVENT_TYPES.length)
    for (const connection of this.connections) {
      for (let i = 0; i < totals.length; i++) {
        totals[i] = (totals[i] as number) + (connection.typeCounts[i] as number)
      }
    }
    return totals
  }

  reached(): void {
    this.reachedCount++
  }

  closed(): void {
    this.closedCount++
  }

  /** Closes every connection; closes from now on are not counted as losses. */
  close(): void {
    this.closing = true
    for (const connection of this.connections) connection.close()
  }

  get closedByUs(): boolean {
    return this.closing
  }
}

/**
 * Reads the stored events after `afterId` with their data (a replay from the server's log,
 * then live) until `done` holds for what has arrived; used as the reference of what was
 * published. Rejects after `timeoutMs` or when the connection ends first.
 */
export async function readEvents(
  options: Omit<ConnectionOptions, 'onEvent' | 'lastEventId'>,
  afterId: number,
  done: (events: CapturedEvent[]) => boolean,
  timeoutMs = 60_000,
): Promise<CapturedEvent[]> {
  const events: CapturedEvent[] = []
  let finish: (() => void) | null = null
  let fail: ((err: Error) => void) | null = null
  const tally: Tally = {
    epoch: performance.now(),
    countedType: -1,
    target: Number.MAX_SAFE_INTEGER,
    reached: () => {},
    closed: () => fail?.(new Error(`reference stream closed after ${events.length} events`)),
  }
  const connection = new SseConnection(tally, {
    ...options,
    lastEventId: afterId,
    onEvent: (event) => {
      if (event.id === undefined) return
      events.push(event)
      if (done(events)) finish?.()
    },
  })
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`reference stream: ${events.length} events in ${timeoutMs} ms`)),
        timeoutMs,
      )
      finish = () => {
        clearTimeout(timer)
        resolve()
      }
      fail = (err) => {
        clearTimeout(timer)
        reject(err)
      }
      connection.response.then(
        (status) => {
          if (status !== 200) fail?.(new Error(`reference stream: HTTP ${status}`))
        },
        (err: Error) => fail?.(err),
      )
    })
  } finally {
    finish = null
    fail = null
    connection.close()
  }
  return events
}

/**
 * The ids the server gave the items `partNumbers` (their item.created events after `afterId`,
 * read back from its log with a replay), in the order of `partNumbers`.
 */
export async function createdIds(
  options: Omit<ConnectionOptions, 'onEvent' | 'lastEventId'>,
  afterId: number,
  partNumbers: readonly string[],
): Promise<number[]> {
  const index = new Map(partNumbers.map((pn, i) => [pn, i]))
  const ids = new Array<number>(partNumbers.length).fill(-1)
  let found = 0
  await readEvents(
    options,
    afterId,
    (events) => {
      const event = events[events.length - 1]
      if (event?.type !== 'item.created' || event.id === undefined) return false
      const i = index.get((JSON.parse(event.data) as { part_number: string }).part_number)
      if (i !== undefined && ids[i] === -1) {
        ids[i] = event.id
        found++
      }
      return found === partNumbers.length
    },
    120_000,
  )
  return ids
}
