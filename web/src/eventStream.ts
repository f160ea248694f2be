/**
 * The console's one connection to `GET /api/events` (the README's "The event stream"): it
 * keeps the stream open across server restarts, hands on every stored event once and in order,
 * and says what the page must do when the stream cannot continue where it was.
 *
 * The browser's EventSource reconnects by itself and resends the last `id:` it saw. It gives
 * up for good when an answer is not a 200 event stream (the session ended, or 429); then this
 * module opens a new one after a pause, with `?last_event_id=` since a new EventSource starts
 * with none.
 */

export type Connection = 'connecting' | 'live' | 'reconnecting' | 'offline'

/** The server's mode as `server.state` reports it; `shutting-down` means "reconnecting soon". */
export type ServerMode = 'normal' | 'read-only' | 'degraded' | 'shutting-down'

export interface StoredEvent {
  id: number
  type: string
  data: Record<string, unknown>
}

export interface StreamReset {
  last_event_id: number
  oldest_available_id: number
}

export interface EventStreamHandlers {
  /** Each stored event once, in id order, across reconnects. */
  event(event: StoredEvent): void
  /** The stream could not resume where the page was: everything shown must be refetched. */
  reset(reset: StreamReset): void
  /** The stream ended for good (`token_revoked`, `token_expired`, `signed_out`). */
  closed(reason: string): void
  /** The connection or the server mode changed. */
  status(connection: Connection, mode: ServerMode | null): void
}

/** The part of the browser's EventSource this module uses, so unit tests can drive it. */
export interface EventSourceLike {
  readonly readyState: number
  onerror: ((this: never, ev: Event) => unknown) | null
  addEventListener(type: string, listener: (ev: MessageEvent<string>) => void): void
  close(): void
}

export interface EventStreamOptions {
  /** The stream's URL, without a query (`/api/events`). */
  url: string
  /** Every stored event type: EventSource hands on only the named types it listens to. */
  storedTypes: readonly string[]
  open?: (url: string) => EventSourceLike
  /** Asks whether the session still holds, when EventSource has given up. */
  stillSignedIn?: () => Promise<boolean>
  /** Pause before opening a new EventSource after one gave up. */
  retryMs?: number
  online?: () => boolean
  setTimer?: (fn: () => void, ms: number) => unknown
  clearTimer?: (timer: unknown) => void
}

const CLOSED = 2

export class EventStream {
  private source: EventSourceLike | null = null
  private lastId: number | null = null
  private connection: Connection = 'connecting'
  private mode: ServerMode | null = null
  private retryTimer: unknown = null
  private stopped = false
  private readonly open: (url: string) => EventSourceLike
  private readonly setTimer: (fn: () => void, ms: number) => unknown
  private readonly clearTimer: (timer: unknown) => void

  constructor(
    private readonly options: EventStreamOptions,
    private readonly handlers: EventStreamHandlers,
  ) {
    this.open = options.open ?? ((url) => new EventSource(url))
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms))
    this.clearTimer = options.clearTimer ?? ((t) => clearTimeout(t as number))
  }

  /** Opens the stream from now on (`lastId` null) or after a known id. */
  start(lastId: number | null = null): void {
    this.stopped = false
    this.lastId = lastId
    this.connect()
  }

  stop(): void {
    this.stopped = true
    if (this.retryTimer !== null) this.clearTimer(this.retryTimer)
    this.retryTimer = null
    this.source?.close()
    this.source = null
  }

  /** The browser went on- or offline: reconnect at once when it is back. */
  networkChanged(): void {
    if (this.stopped) return
    if (!this.isOnline()) this.setStatus('offline', this.mode)
    else if (this.connection !== 'live') {
      this.source?.close()
      this.connect()
    }
  }

  private isOnline(): boolean {
    return this.options.online?.() ?? true
  }

  private connect(): void {
    if (this.retryTimer !== null) this.clearTimer(this.retryTimer)
    this.retryTimer = null
    const url =
      this.lastId === null ? this.options.url : `${this.options.url}?last_event_id=${this.lastId}`
    const source = this.open(url)
    this.source = source
    source.onerror = () => {
      if (this.source !== source || this.stopped) return
      const next = this.isOnline() ? 'reconnecting' : 'offline'
      // A stream that ended on shutdown is not stale: the server said it is coming back.
      this.setStatus(next, this.mode === 'shutting-down' ? 'shutting-down' : this.mode)
      if (source.readyState === CLOSED) void this.afterGiveUp(source)
    }
    for (const type of this.options.storedTypes) {
      source.addEventListener(type, (ev) => this.stored(source, type, ev))
    }
    // Live from the greeting on, not from the response head: the server fixes where a new
    // stream starts when it writes the greeting, so a change made before it may not be sent.
    source.addEventListener('server.state', (ev) => {
      if (this.source !== source) return
      const data = JSON.parse(ev.data) as { mode: ServerMode }
      this.setStatus('live', data.mode)
    })
    source.addEventListener('stream.reset', (ev) => {
      if (this.source !== source) return
      const reset = JSON.parse(ev.data) as StreamReset
      if (ev.lastEventId) this.lastId = Number(ev.lastEventId)
      this.handlers.reset(reset)
    })
    source.addEventListener('stream.closed', (ev) => {
      if (this.source !== source) return
      const { reason } = JSON.parse(ev.data) as { reason: string }
      this.stop()
      this.handlers.closed(reason)
    })
  }

  private stored(source: EventSourceLike, type: string, ev: MessageEvent<string>): void {
    if (this.source !== source) return
    const id = Number(ev.lastEventId)
    // The seam of a reconnect never hands on an event twice.
    if (!Number.isSafeInteger(id) || (this.lastId !== null && id <= this.lastId)) return
    this.lastId = id
    this.handlers.event({ id, type, data: JSON.parse(ev.data) as Record<string, unknown> })
  }

  /** EventSource stopped retrying: find out whether the session ended, else try again later. */
  private async afterGiveUp(source: EventSourceLike): Promise<void> {
    const signedIn = this.options.stillSignedIn ? await this.options.stillSignedIn() : true
    if (this.source !== source || this.stopped) return
    if (!signedIn) {
      this.stop()
      this.handlers.closed('signed_out')
      return
    }
    this.retryTimer = this.setTimer(() => {
      this.retryTimer = null
      if (!this.stopped) this.connect()
    }, this.options.retryMs ?? 3000)
  }

  private setStatus(connection: Connection, mode: ServerMode | null): void {
    if (connection === this.connection && mode === this.mode) return
    this.connection = connection
    this.mode = mode
    this.handlers.status(connection, mode)
  }
}
