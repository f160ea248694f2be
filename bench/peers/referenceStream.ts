import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { SseConnection, type Tally } from '../lib/sseLoad.js'

/**
 * One more SSE connection that keeps each event's data: it tells which `id:` a server gave
 * which payload (by the part number inside it, since nchan's ids are `<time>:<tag>` and
 * the load client reads ids as numbers), and in which order the server sent them.
 * After a phase, every load connection's ids are rewritten to the order the reference saw,
 * so that the harness's analyseDeliveries can check loss, duplicates and order for every
 * server alike.
 */
export class ReferenceStream {
  /** Parsed id, part number and payload of every `item.created`, in arrival order. */
  readonly events: { id: number; partNumber: string; data: string }[] = []
  private readonly connection: SseConnection
  private nextRank = 1

  constructor(baseUrl: string, token: string) {
    const tally: Tally = {
      epoch: performance.now(),
      countedType: -1,
      target: Number.MAX_SAFE_INTEGER,
      reached: () => {},
      closed: () => {},
    }
    this.connection = new SseConnection(tally, {
      baseUrl,
      token: token || undefined,
      onEvent: (event) => {
        if (event.type !== 'item.created' || event.id === undefined) return
        const partNumber = (JSON.parse(event.data) as { part_number: string }).part_number
        this.events.push({ id: event.id, partNumber, data: event.data })
      },
    })
  }

  async opened(): Promise<void> {
    const status = await this.connection.response
    if (status !== 200) throw new Error(`reference stream: HTTP ${status}`)
  }

  /** Waits until every part number has arrived on the reference connection. */
  async waitFor(partNumbers: readonly string[], timeoutMs: number): Promise<boolean> {
    const wanted = new Set(partNumbers)
    let seen = 0
    let checked = 0
    const deadline = performance.now() + timeoutMs
    while (performance.now() < deadline) {
      for (; checked < this.events.length; checked++) {
        if (wanted.has((this.events[checked] as { partNumber: string }).partNumber)) seen++
      }
      if (seen >= wanted.size) return true
      await sleep(20)
    }
    return false
  }

  /**
   * Rewrites the phase's records on every connection from the server's ids to ranks in the
   * server's order, and returns the rank of each part number (publish order). A part number
   * the reference never saw gets a rank no connection has, so it counts as lost everywhere;
   * an id the reference never saw becomes -1 (an unexpected id).
   */
  remap(partNumbers: readonly string[], connections: readonly SseConnection[]): number[] {
    const rankOfId = new Map<number, number>()
    const rankOfPart = new Map<string, number>()
    const wanted = new Set(partNumbers)
    for (const event of this.events) {
      if (!wanted.has(event.partNumber) || rankOfPart.has(event.partNumber)) continue
      const rank = this.nextRank++
      rankOfId.set(event.id, rank)
      rankOfPart.set(event.partNumber, rank)
    }
    const ranks = partNumbers.map((pn) => rankOfPart.get(pn) ?? this.nextRank++)
    for (const connection of connections) {
      const { ids, count } = connection
      for (let r = 0; r < count; r++) ids[r] = rankOfId.get(ids[r] as number) ?? -1
    }
    return ranks
  }

  /** The payload the server sent for a part number (to publish the same bytes to peers). */
  payloads(): Map<string, string> {
    return new Map(this.events.map((e) => [e.partNumber, e.data]))
  }

  close(): void {
    this.connection.close()
  }
}
