import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Worker } from 'node:worker_threads'
import { Pool } from 'undici'
import { tsxWorker } from './tsxWorker.js'
import type { BurstRequest, WriterThreadInput } from './writerThread.js'

/**
 * Creates items over the REST API (POST /api/items), each one an `item.created` event, and
 * notes when each request was sent. Times are milliseconds relative to a caller's epoch
 * (performance.now() based), the same clock the SSE load client records with.
 */
export class ItemWriter {
  private readonly pool: Pool
  private readonly headers: Record<string, string>

  constructor(baseUrl: string, token: string, connections = 4) {
    this.pool = new Pool(baseUrl, { connections, pipelining: 1 })
    this.headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  }

  /** Creates one item; returns when the server has answered 201. */
  async create(partNumber: string): Promise<void> {
    const { statusCode, body } = await this.pool.request({
      method: 'POST',
      path: '/api/items',
      headers: this.headers,
      body: JSON.stringify({
        part_number: partNumber,
        description: 'fan-out benchmark item',
        item_type: 'part',
      }),
    })
    const text = await body.text()
    if (statusCode !== 201) {
      throw new Error(`POST /api/items ${partNumber}: HTTP ${statusCode} ${text.slice(0, 200)}`)
    }
  }

  /** GET a JSON document (e.g. /ready); the status is returned, not thrown. */
  async getJson(path: string): Promise<{ status: number; body: unknown }> {
    const { statusCode, body } = await this.pool.request({ method: 'GET', path })
    return { status: statusCode, body: await body.json() }
  }

  close(): Promise<void> {
    return this.pool.close()
  }
}

/** When each item's POST was sent and how long the server took to answer it. */
export interface PublishTimes {
  /** Milliseconds since the epoch when the request was handed to the HTTP client. */
  sentAt: Float64Array
  /** Request round trip (sent to 201 read) in milliseconds. */
  roundTrip: Float64Array
  /** From the first request sent to the last answer read, in milliseconds. */
  elapsed: number
}

/**
 * Publishes one item at a time at `rate` per second on a fixed schedule (item i is due at
 * i / rate seconds); an item whose predecessor is still in flight at its slot waits for it.
 */
export async function publishAtRate(
  writer: ItemWriter,
  partNumbers: readonly string[],
  rate: number,
  epoch: number,
): Promise<PublishTimes & { late: number }> {
  const sentAt = new Float64Array(partNumbers.length)
  const roundTrip = new Float64Array(partNumbers.length)
  const interval = 1000 / rate
  const start = performance.now()
  let late = 0
  for (let i = 0; i < partNumbers.length; i++) {
    const wait = start + i * interval - performance.now()
    if (wait > 1) await sleep(wait)
    else if (wait < -interval) late++
    const sent = performance.now()
    sentAt[i] = sent - epoch
    await writer.create(partNumbers[i] as string)
    roundTrip[i] = performance.now() - sent
  }
  return { sentAt, roundTrip, elapsed: performance.now() - start, late }
}

/** Publishes every item as fast as `concurrency` parallel writers can. */
export async function publishBurst(
  writer: ItemWriter,
  partNumbers: readonly string[],
  concurrency: number,
  epoch: number,
): Promise<PublishTimes> {
  const sentAt = new Float64Array(partNumbers.length)
  const roundTrip = new Float64Array(partNumbers.length)
  const start = performance.now()
  let next = 0
  const worker = async () => {
    while (next < partNumbers.length) {
      const i = next++
      const sent = performance.now()
      sentAt[i] = sent - epoch
      await writer.create(partNumbers[i] as string)
      roundTrip[i] = performance.now() - sent
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, partNumbers.length) }, worker))
  return { sentAt, roundTrip, elapsed: performance.now() - start }
}

/**
 * publishBurst from a worker thread with its own writers (see writerThread.ts), as from a
 * separate client: times come back relative to the caller's epoch.
 */
export class WriterThread {
  private readonly thread: Worker

  constructor(baseUrl: string, token: string, connections: number) {
    this.thread = tsxWorker(new URL('./writerThread.ts', import.meta.url), {
      baseUrl,
      token,
      connections,
    } satisfies WriterThreadInput)
  }

  burst(partNumbers: string[], concurrency: number, epoch: number): Promise<PublishTimes> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err)
      this.thread.once('error', onError)
      this.thread.once('message', (answer: { times?: PublishTimes; error?: string }) => {
        this.thread.off('error', onError)
        if (answer.times) resolve(answer.times)
        else reject(new Error(answer.error))
      })
      this.thread.postMessage({
        partNumbers,
        concurrency,
        epoch: performance.timeOrigin + epoch,
      } satisfies BurstRequest)
    })
  }

  async close(): Promise<void> {
    const exited = new Promise((done) => this.thread.once('exit', done))
    this.thread.postMessage('close')
    await exited
  }
}
