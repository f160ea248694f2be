import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import type { Random } from './random.js'

export interface ChurnCounts {
  created: number
  updated: number
  deleted: number
  /** Answers other than 201/200/204 and network errors, by status or error code. */
  failed: Map<string, number>
}

/**
 * Writers that create, update (PATCH) and delete items over the REST API at a steady total rate.
 * Each writer only touches the items it created itself, so writers never race on one item.
 */
export class ItemChurn {
  readonly counts: ChurnCounts = { created: 0, updated: 0, deleted: 0, failed: new Map() }
  private readonly pool: Pool
  private readonly headers: Record<string, string>
  private running = false
  private workers: Promise<void>[] = []

  constructor(
    baseUrl: string,
    token: string,
    private readonly options: { writers: number; rate: number; random: Random },
  ) {
    this.pool = new Pool(baseUrl, { connections: options.writers, pipelining: 1 })
    this.headers = { authorization: `Bearer ${token}` }
  }

  start(): void {
    this.running = true
    this.workers = Array.from({ length: this.options.writers }, (_, w) =>
      this.writer(w, this.options.random.fork()),
    )
  }

  /** Stops every writer and waits for the requests in flight. */
  async stop(): Promise<void> {
    this.running = false
    await Promise.all(this.workers)
  }

  close(): Promise<void> {
    return this.pool.close()
  }

  /** Sends one request; returns the status, or the error code for a failed connection. */
  async request(method: string, path: string, body?: unknown): Promise<number | string> {
    try {
      const response = await this.pool.request({
        method,
        path,
        // No content-type without a body: Fastify refuses an empty JSON body (a DELETE) with 400.
        headers:
          body === undefined
            ? this.headers
            : { ...this.headers, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      await response.body.dump()
      return response.statusCode
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? (err as Error).message
    }
  }

  private fail(what: string, outcome: number | string): void {
    const key = `${what} ${outcome}`
    this.counts.failed.set(key, (this.counts.failed.get(key) ?? 0) + 1)
  }

  private async writer(index: number, random: Random): Promise<void> {
    const interval = (1000 * this.options.writers) / this.options.rate
    const mine: string[] = []
    let serial = 0
    let due = performance.now() + random.between(0, interval)
    while (this.running) {
      const wait = due - performance.now()
      if (wait > 1) await sleep(wait)
      due = Math.max(due + interval, performance.now() - interval)
      if (!this.running) break
      const roll = random.next()
      if (mine.length < 5 || roll < 0.45) {
        const pn = `SOAK-${index}-${++serial}`
        const outcome = await this.request('POST', '/api/items', {
          part_number: pn,
          description: `soak item ${serial}`,
          item_type: random.chance(0.5) ? 'part' : 'assembly',
        })
        if (outcome === 201) {
          mine.push(pn)
          this.counts.created++
        } else this.fail('POST', outcome)
      } else if (roll < 0.8) {
        const pn = mine[random.below(mine.length)] as string
        const outcome = await this.request('PATCH', `/api/items/${pn}`, {
          description: `updated ${random.below(1e9)}`,
        })
        if (outcome === 200) this.counts.updated++
        else this.fail('PATCH', outcome)
      } else {
        const at = random.below(mine.length)
        const pn = mine[at] as string
        const outcome = await this.request('DELETE', `/api/items/${pn}`)
        if (outcome === 204) {
          mine.splice(at, 1)
          this.counts.deleted++
        } else this.fail('DELETE', outcome)
      }
    }
  }
}
