import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { distribution, type Distribution } from './deliveries.js'

/** What a probe sampler saw between start and stop. */
export interface ProbeFigures {
  latency: Distribution
  failures: number
  /**
   * How long the request still in flight at stop() had waited, 0 if none: a server whose event
   * loop is held never answers, and this is how long its probe had been kept waiting.
   */
  unansweredMs: number
}

/**
 * Asks `url` (a probe such as /health) every `everyMs` until stopped, one request at a time, the
 * way an orchestrator would, and records each answer's round trip: how long the server keeps
 * its probes waiting while it is busy with fan-out.
 */
export class ProbeSampler {
  private readonly times: number[] = []
  private failures = 0
  private stopped = false
  private inFlightSince: number | null = null
  private readonly abort = new AbortController()
  private readonly running: Promise<void>

  constructor(
    private readonly url: string,
    private readonly everyMs = 100,
  ) {
    this.running = this.loop()
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const started = performance.now()
      this.inFlightSince = started
      try {
        const res = await fetch(this.url, { signal: this.abort.signal })
        await res.arrayBuffer()
        if (res.ok) this.times.push(performance.now() - started)
        else this.failures++
      } catch {
        if (!this.stopped) this.failures++
      }
      this.inFlightSince = null
      const left = this.everyMs - (performance.now() - started)
      if (left > 0 && !this.stopped) await sleep(left)
    }
  }

  /** Stops sampling; a request still waiting for its answer is abandoned and reported. */
  async stop(): Promise<ProbeFigures> {
    this.stopped = true
    const since = this.inFlightSince
    const unansweredMs = since === null ? 0 : performance.now() - since
    this.abort.abort()
    await this.running
    return {
      latency: distribution(Float64Array.from(this.times)),
      failures: this.failures,
      unansweredMs,
    }
  }
}
