import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { distribution, type Distribution } from './deliveries.js'

/**
 * Asks `url` (a probe such as /health) every `everyMs` until stopped, one request at a time, the
 * way an orchestrator would, and records each answer's round trip: how long the server keeps
 * its probes waiting while it is busy with fan-out.
 */
export class ProbeSampler {
  private readonly times: number[] = []
  private failures = 0
  private stopped = false
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
      try {
        const res = await fetch(this.url)
        await res.arrayBuffer()
        if (res.ok) this.times.push(performance.now() - started)
        else this.failures++
      } catch {
        this.failures++
      }
      const left = this.everyMs - (performance.now() - started)
      if (left > 0 && !this.stopped) await sleep(left)
    }
  }

  async stop(): Promise<{ latency: Distribution; failures: number }> {
    this.stopped = true
    await this.running
    return { latency: distribution(Float64Array.from(this.times)), failures: this.failures }
  }
}
