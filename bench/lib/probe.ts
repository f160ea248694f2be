import type { Worker } from 'node:worker_threads'
import { distribution, type Distribution } from './deliveries.js'
import type { ProbeThreadInput, ProbeThreadResult } from './probeThread.js'
import { tsxWorker } from './tsxWorker.js'

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
 * its probes waiting while it is busy with fan-out. The requests are made from a thread of
 * their own (see probeThread.ts), as from a separate client.
 */
export class ProbeSampler {
  private readonly thread: Worker
  private readonly result: Promise<ProbeThreadResult>

  constructor(url: string, everyMs = 100) {
    this.thread = tsxWorker(new URL('./probeThread.ts', import.meta.url), {
      url,
      everyMs,
    } satisfies ProbeThreadInput)
    this.result = new Promise((resolve, reject) => {
      this.thread.once('message', resolve)
      this.thread.once('error', reject)
    })
  }

  /** Stops sampling; a request still waiting for its answer is abandoned and reported. */
  async stop(): Promise<ProbeFigures> {
    this.thread.postMessage('stop')
    const { times, failures, unansweredMs } = await this.result
    await this.thread.terminate()
    return { latency: distribution(Float64Array.from(times)), failures, unansweredMs }
  }
}
