/**
 * Pings object storage on a fixed cadence, each ping bounded by its own timeout, and reports
 * healthy after the first success and unhealthy after `failureThreshold` consecutive failures.
 * Pings never overlap: the next one is scheduled only when the previous one has settled.
 */
export interface StorageMonitorOptions {
  ping: (signal: AbortSignal) => Promise<void>
  intervalMs: number
  timeoutMs: number
  failureThreshold: number
  onHealthChange: (healthy: boolean, reason: string) => void
}

/** One settled ping: how long it took (a timed-out ping counts its timeout) and whether it passed. */
export interface PingResult {
  ok: boolean
  durationMs: number
}

export class StorageMonitor {
  private failures = 0
  private healthy = true
  private timer: NodeJS.Timeout | null = null
  private stopped = false
  private inFlight: Promise<void> | null = null
  private readonly pingListeners = new Set<(result: PingResult) => void>()

  constructor(private readonly options: StorageMonitorOptions) {}

  get isHealthy(): boolean {
    return this.healthy
  }

  get consecutiveFailures(): number {
    return this.failures
  }

  /** Calls `listener` after every ping (for metrics); returns a function that removes it. */
  onPing(listener: (result: PingResult) => void): () => void {
    this.pingListeners.add(listener)
    return () => this.pingListeners.delete(listener)
  }

  /** Runs the first ping (awaited, so start-up knows the storage state) and schedules the rest. */
  async start(): Promise<void> {
    await this.check()
    this.schedule()
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  /** One ping now; concurrent callers share it. */
  check(): Promise<void> {
    this.inFlight ??= this.pingOnce().finally(() => {
      this.inFlight = null
    })
    return this.inFlight
  }

  private schedule(): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      void this.check().then(() => this.schedule())
    }, this.options.intervalMs)
    this.timer.unref()
  }

  private async pingOnce(): Promise<void> {
    const controller = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new Error(`storage ping timed out after ${this.options.timeoutMs} ms`)
        controller.abort(err)
        reject(err)
      }, this.options.timeoutMs)
    })
    const started = performance.now()
    let ok = false
    try {
      await Promise.race([this.options.ping(controller.signal), timeout])
      ok = true
      this.failures = 0
      if (!this.healthy) {
        this.healthy = true
        this.options.onHealthChange(true, 'storage ping succeeded')
      }
    } catch (err) {
      this.failures++
      if (this.healthy && this.failures >= this.options.failureThreshold) {
        this.healthy = false
        this.options.onHealthChange(
          false,
          `storage ping failed ${this.failures} times: ${(err as Error).message}`,
        )
      }
    } finally {
      clearTimeout(timer)
      const result: PingResult = { ok, durationMs: performance.now() - started }
      for (const listener of this.pingListeners) listener(result)
    }
  }
}
