import { setTimeout as sleep } from 'node:timers/promises'
import { SseConnection, type CapturedEvent, type Tally } from '../lib/sseLoad.js'
import type { Random } from './random.js'

/** How a client reads: fast ones never stop, slow ones pause their socket, flaky ones vanish. */
export type Behaviour = 'fast' | 'slow' | 'flaky'

export interface ModeChangeSeen {
  mode: string
  previous: string
}

/**
 * One logical SSE client over its whole life: a sequence of raw-socket connections, each after
 * the first resuming with the last id received (as EventSource does). It records every id in
 * arrival order and where stream.reset events fell in that sequence; the checks are made after
 * the run (sequenceCheck.ts).
 */
export class SoakClient {
  /** Ids of stored events in arrival order, over every connection. */
  readonly ids: number[] = []
  /** For each stream.reset received: how many ids had arrived before it. */
  readonly resetsAt: number[] = []
  readonly modeChanges: ModeChangeSeen[] = []
  /** The mode from the last server.state received (greeting or change). */
  lastMode = ''
  connections = 0
  /** Connections the server ended or the network broke, not this client. */
  droppedByServer = 0
  /** Connections that did not answer 200, or failed before the response head, by reason. */
  readonly failures = new Map<string, number>()
  private connection: SseConnection | null = null
  /** ids.length when a stream.reset arrived on the current connection, else -1. */
  private resetOnConnectionAt = -1
  private stopped = false
  private behaviourDone: Promise<void> = Promise.resolve()

  constructor(
    readonly index: number,
    readonly behaviour: Behaviour,
    private readonly baseUrl: string,
    private readonly token: string,
    private readonly random: Random,
  ) {}

  get lastId(): number | undefined {
    return this.ids[this.ids.length - 1]
  }

  get connected(): boolean {
    return this.connection !== null
  }

  /** True once the client has `latestId`, or was told by a reset on this connection to refetch. */
  caughtUp(latestId: number): boolean {
    if (!this.connection) return false
    if ((this.lastId ?? 0) >= latestId) return true
    return this.resetOnConnectionAt === this.ids.length
  }

  /** Connects and starts the client's behaviour in the background. */
  start(): void {
    this.connect()
    this.behaviourDone = this.act()
  }

  /** Ends the behaviour (resuming a paused socket) and makes sure the client is connected. */
  async settle(): Promise<void> {
    this.stopped = true
    await this.behaviourDone
    this.connection?.socket.resume()
    if (!this.connection) this.connect()
  }

  /** Closes the connection for good. */
  close(): void {
    this.stopped = true
    const connection = this.connection
    this.connection = null
    connection?.close()
  }

  private connect(): void {
    this.connections++
    this.resetOnConnectionAt = -1
    const tally: Tally = {
      epoch: 0,
      countedType: -1,
      target: Number.MAX_SAFE_INTEGER,
      reached: () => {},
      closed: (closed) => {
        if (this.connection !== closed) return
        // Not closed by us: the server ended the stream or the network broke it. Reconnect the
        // way EventSource would, after a short delay.
        this.connection = null
        this.droppedByServer++
        if (!this.stopped) void sleep(this.random.between(200, 1500)).then(() => this.reconnect())
      },
    }
    const connection = new SseConnection(
      tally,
      {
        baseUrl: this.baseUrl,
        token: this.token,
        lastEventId: this.lastId,
        onEvent: (event) => {
          if (this.connection === connection) this.receive(event)
        },
      },
      16,
    )
    this.connection = connection
    connection.response.then(
      (status) => {
        if (status !== 200) this.fail(`HTTP ${status}`, connection)
      },
      (err: NodeJS.ErrnoException) => this.fail(err.code ?? err.message, connection),
    )
  }

  private fail(reason: string, connection: SseConnection): void {
    this.failures.set(reason, (this.failures.get(reason) ?? 0) + 1)
    connection.close()
  }

  private reconnect(): void {
    if (!this.connection) this.connect()
  }

  private receive(event: CapturedEvent): void {
    // stream.reset carries an id (where the stream resumes) but stands for no stored event.
    if (event.type === 'stream.reset') {
      this.resetsAt.push(this.ids.length)
      this.resetOnConnectionAt = this.ids.length
    } else if (event.id !== undefined) {
      this.ids.push(event.id)
    } else if (event.type === 'server.state') {
      const data = JSON.parse(event.data) as { mode: string; previous?: string }
      this.lastMode = data.mode
      if (data.previous !== undefined) {
        this.modeChanges.push({ mode: data.mode, previous: data.previous })
      }
    }
  }

  /** Waits `ms`, or less once the client is being settled. */
  private async hold(ms: number): Promise<void> {
    const until = Date.now() + ms
    while (!this.stopped && Date.now() < until) await sleep(Math.min(250, until - Date.now()))
  }

  private async act(): Promise<void> {
    const r = this.random
    while (!this.stopped) {
      switch (this.behaviour) {
        case 'fast':
          await this.hold(60_000)
          break
        case 'slow':
          // Read for a while, then stop reading: the server's socket buffer fills (backpressure).
          await this.hold(r.between(500, 8000))
          this.connection?.socket.pause()
          await this.hold(r.chance(0.2) ? r.between(20_000, 50_000) : r.between(500, 10_000))
          this.connection?.socket.resume()
          break
        case 'flaky': {
          await this.hold(r.between(2000, 20_000))
          if (this.stopped) break
          if (r.chance(0.3)) {
            this.connection?.socket.pause()
            await this.hold(r.between(500, 5000))
            this.connection?.socket.resume()
          }
          // Vanish without a word, come back later with Last-Event-ID.
          const connection = this.connection
          this.connection = null
          connection?.close()
          await this.hold(r.chance(0.2) ? r.between(20_000, 45_000) : r.between(100, 8000))
          this.reconnect()
          break
        }
      }
    }
  }
}
