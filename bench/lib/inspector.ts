import { WebSocket } from 'undici'

/**
 * A minimal Chrome DevTools Protocol client for a server started with
 * `--inspect=127.0.0.1:0`: the benchmark uses it to force a full garbage collection before
 * reading RSS (PGlite's start-up leaves a few hundred MiB of buffers that only a major GC
 * frees, so an RSS taken before one is meaningless) and to read process.memoryUsage().
 * The session is opened only for those calls and closed again.
 */

/** `Debugger listening on ws://…` as printed by node on stderr. */
export const INSPECTOR_URL = /Debugger listening on (ws:\/\/\S+)/

export interface MemoryUsage {
  rss: number
  heapTotal: number
  heapUsed: number
  external: number
  arrayBuffers: number
}

export class InspectorSession {
  private nextId = 1
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >()

  private constructor(private readonly socket: WebSocket) {
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as {
        id?: number
        result?: unknown
        error?: { message: string }
      }
      if (message.id === undefined) return
      const waiter = this.pending.get(message.id)
      this.pending.delete(message.id)
      if (message.error) waiter?.reject(new Error(message.error.message))
      else waiter?.resolve(message.result)
    })
    socket.addEventListener('close', () => {
      for (const waiter of this.pending.values()) waiter.reject(new Error('inspector closed'))
      this.pending.clear()
    })
  }

  static open(url: string): Promise<InspectorSession> {
    const socket = new WebSocket(url)
    return new Promise((resolve, reject) => {
      socket.addEventListener('open', () => resolve(new InspectorSession(socket)), { once: true })
      socket.addEventListener('error', () => reject(new Error(`cannot open inspector ${url}`)), {
        once: true,
      })
    })
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.socket.send(JSON.stringify({ id, method, params }))
    })
  }

  /** Full (major) garbage collection in the inspected process. */
  async collectGarbage(): Promise<void> {
    await this.send('HeapProfiler.collectGarbage')
  }

  async memoryUsage(): Promise<MemoryUsage> {
    const reply = (await this.send('Runtime.evaluate', {
      expression: 'JSON.stringify(process.memoryUsage())',
      returnByValue: true,
    })) as { result: { value: string } }
    return JSON.parse(reply.result.value) as MemoryUsage
  }

  close(): void {
    this.socket.close()
  }
}

/** Opens a session, runs `fn`, closes the session. */
export async function withInspector<T>(
  url: string,
  fn: (session: InspectorSession) => Promise<T>,
): Promise<T> {
  const session = await InspectorSession.open(url)
  try {
    return await fn(session)
  } finally {
    session.close()
  }
}
