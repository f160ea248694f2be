import type { SseConnection } from './sseLoad.js'

/** Percentiles of a set of millisecond values. */
export interface Distribution {
  count: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
  mean: number
}

/** Nearest-rank percentiles; sorts `values` in place. */
export function distribution(values: Float64Array): Distribution {
  values.sort()
  const n = values.length
  const at = (p: number) => (n === 0 ? NaN : (values[Math.min(n - 1, Math.ceil(p * n) - 1)] ?? NaN))
  let sum = 0
  for (let i = 0; i < n; i++) sum += values[i] as number
  return {
    count: n,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    max: n === 0 ? NaN : (values[n - 1] as number),
    mean: n === 0 ? NaN : sum / n,
  }
}

/** The events a phase published: their ids (from the server's log) and when each was sent. */
export interface Published {
  ids: readonly number[]
  /** sentAt[i] belongs to ids[i]; milliseconds since the phase's epoch. */
  sentAt: Float64Array
}

export interface DeliveryReport {
  clients: number
  eventsPerClient: number
  /** (event, client) pairs delivered, first copies only. */
  delivered: number
  /** (event, client) pairs never delivered. */
  lost: number
  /** Second and later copies of an event on one connection. */
  duplicated: number
  /** Deliveries whose id was lower than the one before it on the same connection. */
  outOfOrder: number
  /** Counted-type events with an id this phase did not publish. */
  unexpected: number
  /** Publish (request sent) to delivery (socket read), over every (event, client) pair. */
  latency: Distribution
  /** Per connection, when its last expected event arrived (ms since the epoch). */
  clientDone: Distribution
  /**
   * Per event, from its first to its last delivery over all connections: the fan-out itself,
   * without the write path in front of it.
   */
  spread: Distribution
  /** When the last delivery of the phase happened (ms since the epoch). */
  lastDeliveryAt: number
}

/**
 * Checks every connection's records against what was published: each connection must have
 * each event exactly once, in increasing id order; and measures publish-to-receive latency.
 */
export function analyseDeliveries(
  connections: readonly SseConnection[],
  countedType: number,
  published: Published,
): DeliveryReport {
  const m = published.ids.length
  let minId = Infinity
  let maxId = -Infinity
  for (const id of published.ids) {
    minId = Math.min(minId, id)
    maxId = Math.max(maxId, id)
  }
  const span = m === 0 ? 0 : maxId - minId + 1
  const indexOfId = new Int32Array(span).fill(-1)
  published.ids.forEach((id, i) => {
    indexOfId[id - minId] = i
  })

  const latencies = new Float64Array(connections.length * m)
  const clientDone = new Float64Array(connections.length)
  const seen = new Uint8Array(m)
  const firstAt = new Float64Array(m).fill(Infinity)
  const lastAt = new Float64Array(m).fill(-Infinity)
  let delivered = 0
  let duplicated = 0
  let outOfOrder = 0
  let unexpected = 0
  let lastDeliveryAt = 0
  connections.forEach((connection, c) => {
    seen.fill(0)
    let previous = -Infinity
    let distinct = 0
    let done = 0
    const { ids, types, times, count } = connection
    for (let r = 0; r < count; r++) {
      if (types[r] !== countedType) continue
      const id = ids[r] as number
      const slot = id - minId
      const i = slot >= 0 && slot < span ? (indexOfId[slot] as number) : -1
      if (i < 0) {
        unexpected++
        continue
      }
      if (seen[i]) {
        duplicated++
        continue
      }
      seen[i] = 1
      distinct++
      if (id < previous) outOfOrder++
      previous = id
      const at = times[r] as number
      latencies[delivered++] = at - (published.sentAt[i] as number)
      if (at < (firstAt[i] as number)) firstAt[i] = at
      if (at > (lastAt[i] as number)) lastAt[i] = at
      if (at > done) done = at
    }
    clientDone[c] = distinct === m ? done : Infinity
    if (done > lastDeliveryAt) lastDeliveryAt = done
  })
  const spread = new Float64Array(m)
  for (let i = 0; i < m; i++) spread[i] = (lastAt[i] as number) - (firstAt[i] as number)
  return {
    clients: connections.length,
    eventsPerClient: m,
    delivered,
    lost: connections.length * m - delivered,
    duplicated,
    outOfOrder,
    unexpected,
    latency: distribution(latencies.subarray(0, delivered)),
    clientDone: distribution(clientDone),
    spread: distribution(spread),
    lastDeliveryAt,
  }
}
