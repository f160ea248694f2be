import { connect, type Socket } from 'node:net'
import { StringDecoder } from 'node:string_decoder'
import { createParser } from 'eventsource-parser'
import { Compile } from 'typebox/compile'
import { expect } from 'vitest'
import { EVENT_TYPES, eventCatalogue, isEventType } from '../../src/events/catalogue.js'
import { api } from './server.js'

const checkers = new Map(EVENT_TYPES.map((type) => [type, Compile(eventCatalogue[type].data)]))

/** Why an event is not what the catalogue says its type carries, or null if it is. */
export function contractProblem(event: ReceivedEvent): string | null {
  if (!isEventType(event.type)) return `${event.type} is not in the event catalogue`
  const checker = checkers.get(event.type)
  if (!checker || checker.Check(event.data)) return null
  const first = checker.Errors(event.data)[0]
  return `${event.type} ${JSON.stringify(event.data)}: ${first?.instancePath || '/'} ${first?.message}`
}

export interface ReceivedEvent {
  id?: number
  type: string
  data: any
}

export interface SseClientOptions {
  token?: string
  lastEventId?: number | string
  query?: Record<string, string>
  headers?: Record<string, string>
  /** Do not read from the socket until resume() is called (a stalled consumer). */
  paused?: boolean
  /** Ask as an HTTP/1.0 client (no chunked transfer coding). */
  http10?: boolean
}

/**
 * An SSE client on a raw TCP socket: it speaks HTTP/1.1 itself, so tests control exactly when
 * bytes are read (pause() stops reading and lets TCP push back on the server).
 */
export class SseClient {
  readonly events: ReceivedEvent[] = []
  /** Events whose data does not match the catalogue's schema for their type. */
  readonly offContract: string[] = []
  status = 0
  headers: Record<string, string> = {}
  retry: number | undefined
  readonly ended: Promise<void>
  private readonly socket: Socket
  private head = ''
  private headDone = false
  private chunkBuffer = Buffer.alloc(0)
  // Multi-byte characters may straddle TCP reads.
  private readonly decoder = new StringDecoder('utf8')
  private waiters: { check: () => boolean; resolve: () => void }[] = []
  private readonly parser = createParser({
    onEvent: (message) => {
      const event: ReceivedEvent = {
        type: message.event ?? 'message',
        data: JSON.parse(message.data),
      }
      if (message.id !== undefined) event.id = Number(message.id)
      const problem = contractProblem(event)
      if (problem) this.offContract.push(problem)
      this.events.push(event)
      this.notify()
    },
    onRetry: (ms) => {
      this.retry = ms
    },
  })

  constructor(baseUrl: string, options: SseClientOptions = {}) {
    const url = new URL('/api/events', baseUrl)
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v)
    const lines = [
      `GET ${url.pathname}${url.search} HTTP/${options.http10 ? '1.0' : '1.1'}`,
      `Host: ${url.host}`,
      'Accept: text/event-stream',
    ]
    if (options.token) lines.push(`Authorization: Bearer ${options.token}`)
    if (options.lastEventId !== undefined) lines.push(`Last-Event-ID: ${options.lastEventId}`)
    for (const [k, v] of Object.entries(options.headers ?? {})) lines.push(`${k}: ${v}`)
    this.socket = connect(Number(url.port), url.hostname)
    this.socket.write(`${lines.join('\r\n')}\r\n\r\n`)
    if (options.paused) this.socket.pause()
    this.socket.on('data', (data) => this.onData(data))
    this.ended = new Promise((resolve) => {
      this.socket.on('close', () => {
        this.notify()
        resolve()
      })
    })
    this.socket.on('error', () => {})
  }

  get closed(): boolean {
    return this.socket.destroyed || this.socket.readableEnded
  }

  /** Stored events (they carry an id; stream.reset does too but stands for none), in order. */
  get stored(): ReceivedEvent[] {
    return this.events.filter((e) => e.id !== undefined && e.type !== 'stream.reset')
  }

  get lastId(): number | undefined {
    const stored = this.stored
    return stored[stored.length - 1]?.id
  }

  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    this.socket.resume()
  }

  close(): void {
    this.socket.destroy()
  }

  /** Resolves once `check` holds; rejects if the connection ends first. */
  waitFor(check: (events: ReceivedEvent[]) => boolean, what = 'condition'): Promise<void> {
    if (check(this.events)) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const waiter = {
        check: () => {
          if (check(this.events)) {
            resolve()
            return true
          }
          if (this.socket.destroyed) {
            reject(new Error(`connection closed before ${what}; got ${this.events.length} events`))
            return true
          }
          return false
        },
        resolve,
      }
      this.waiters.push(waiter)
    })
  }

  waitForEvent(
    type: string,
    predicate: (e: ReceivedEvent) => boolean = () => true,
  ): Promise<ReceivedEvent> {
    return this.waitFor(
      (events) => events.some((e) => e.type === type && predicate(e)),
      `event ${type}`,
    ).then(() => this.events.find((e) => e.type === type && predicate(e)) as ReceivedEvent)
  }

  waitForStoredCount(n: number): Promise<void> {
    return this.waitFor(() => this.stored.length >= n, `${n} stored events`)
  }

  /** Resolves when the response head has arrived. */
  connected(): Promise<void> {
    return this.waitFor(() => this.headDone, 'response head')
  }

  private notify(): void {
    this.waiters = this.waiters.filter((w) => !w.check())
  }

  private onData(data: Buffer): void {
    if (!this.headDone) {
      this.head += data.toString('latin1')
      const end = this.head.indexOf('\r\n\r\n')
      if (end < 0) return
      const [statusLine, ...headerLines] = this.head.slice(0, end).split('\r\n')
      this.status = Number(statusLine?.split(' ')[1])
      for (const line of headerLines) {
        const i = line.indexOf(':')
        this.headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
      }
      this.headDone = true
      const rest = Buffer.from(this.head.slice(end + 4), 'latin1')
      this.head = ''
      this.notify()
      if (rest.length > 0) this.onBody(rest)
      return
    }
    this.onBody(data)
  }

  private onBody(data: Buffer): void {
    if (this.headers['transfer-encoding'] !== 'chunked') {
      this.parser.feed(this.decoder.write(data))
      return
    }
    this.chunkBuffer = Buffer.concat([this.chunkBuffer, data])
    for (;;) {
      const lineEnd = this.chunkBuffer.indexOf('\r\n')
      if (lineEnd < 0) return
      const size = parseInt(this.chunkBuffer.subarray(0, lineEnd).toString('latin1'), 16)
      if (this.chunkBuffer.length < lineEnd + 2 + size + 2) return
      const chunk = this.chunkBuffer.subarray(lineEnd + 2, lineEnd + 2 + size)
      this.chunkBuffer = this.chunkBuffer.subarray(lineEnd + 2 + size + 2)
      if (size === 0) return
      this.parser.feed(this.decoder.write(chunk))
    }
  }
}

const opened: SseClient[] = []

/** A viewer's event stream on `server`, closed by closeStreams() (call it in afterEach). */
export function openStream(
  server: { url: string; tokens: { viewer: string } },
  options: SseClientOptions = {},
): SseClient {
  const client = new SseClient(server.url, { token: server.tokens.viewer, ...options })
  opened.push(client)
  return client
}

/** openStream, once the greeting (the current mode) has arrived. */
export async function openGreetedStream(
  server: { url: string; tokens: { viewer: string } },
  options: SseClientOptions = {},
): Promise<SseClient> {
  const client = openStream(server, options)
  await client.waitForEvent('server.state')
  return client
}

/** Closes every stream openStream opened, and checks that all they received kept the contract. */
export function closeStreams(): void {
  const offContract: string[] = []
  for (const client of opened.splice(0)) {
    client.close()
    offContract.push(...client.offContract)
  }
  expect(offContract, 'events that do not match the event catalogue').toEqual([])
}

/** Creates item `partNumber` as the editor and waits for `client` to receive it: still live. */
export async function expectStillLive(
  server: { url: string; tokens: { editor: string } },
  client: SseClient,
  partNumber: string,
): Promise<void> {
  const created = await api(server, 'POST', '/api/items', {
    token: server.tokens.editor,
    body: { part_number: partNumber, item_type: 'part' },
  })
  expect(created.status).toBe(201)
  await client.waitForEvent('item.created', (e) => e.data.part_number === partNumber)
  expect(client.closed).toBe(false)
}
