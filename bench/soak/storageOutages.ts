import { setTimeout as sleep } from 'node:timers/promises'
import type { S3Server } from '../../test/support/s3.js'
import type { Random } from './random.js'

export interface Outage {
  /** Seconds since the run started. */
  startedAt: number
  seconds: number
}

/**
 * Stops and restarts object storage (s3rver) on a schedule: `count` outages spread over the
 * run, each lasting a random few seconds (long enough for the health monitor to notice).
 */
export class StorageOutages {
  readonly outages: Outage[] = []
  private stopped = false
  private done: Promise<void> = Promise.resolve()

  constructor(
    private readonly s3: S3Server,
    private readonly random: Random,
  ) {}

  start(runMs: number, count: number, startedAt: number): void {
    this.done = this.run(runMs, count, startedAt)
  }

  /** Ends the schedule and leaves storage running. */
  async stop(): Promise<void> {
    this.stopped = true
    await this.done
    if (!this.s3.running) await this.s3.restart()
  }

  private async run(runMs: number, count: number, startedAt: number): Promise<void> {
    const slot = runMs / (count + 1)
    for (let i = 1; i <= count && !this.stopped; i++) {
      const at = startedAt + slot * i + this.random.between(-slot / 4, slot / 4)
      while (!this.stopped && Date.now() < at) await sleep(Math.min(250, at - Date.now()))
      if (this.stopped) break
      const seconds = this.random.between(3, 8)
      this.outages.push({ startedAt: (Date.now() - startedAt) / 1000, seconds })
      await this.s3.stop()
      await sleep(seconds * 1000)
      await this.s3.restart()
    }
  }
}
