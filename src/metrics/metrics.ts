import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { StreamClosedReason } from '../domain/streamRights.js'
import type { BrokerObserver, ResetReason } from '../events/broker.js'
import type { StreamRefusal } from '../events/streamSlots.js'
import type { Mode } from '../state/modeMachine.js'
import type { PingResult } from '../state/storageMonitor.js'

/** Every metric name starts with this, the process metrics from prom-client too. */
const METRIC_PREFIX = 'silo_'

// A Record so that a new mode cannot be added without a series for it.
const MODES: Record<Mode, true> = { normal: true, 'read-only': true, degraded: true }
const RESET_REASONS: Record<ResetReason, true> = {
  last_event_id_pruned: true,
  last_event_id_unknown: true,
  fell_behind: true,
}
const REFUSALS: Record<StreamRefusal, true> = { max_streams_per_token: true, max_streams: true }
const CLOSED_REASONS: Record<StreamClosedReason, true> = {
  token_revoked: true,
  token_expired: true,
  signed_out: true,
  session_expired: true,
}

/** What the gauges read at scrape time. */
export interface MetricSources {
  sseClients: () => number
  mode: () => Mode
}

export type HttpLabel = 'method' | 'route' | 'status_code'

export interface Metrics {
  /** This app's own registry; the process-wide default registry is never used. */
  registry: Registry
  eventsPublished: Counter
  eventsDelivered: Counter
  streamResets: Counter<'reason'>
  slowConsumerCutoffs: Counter<'reason'>
  /** New event streams answered 429, by the cap that refused them. */
  streamsRefused: Counter<'reason'>
  /** Open event streams ended with stream.closed, by reason. */
  streamsClosed: Counter<'reason'>
  storagePingDuration: Histogram
  storagePingFailures: Counter
  httpRequestDuration: Histogram<HttpLabel>
  /** Feeds the event broker's counts into the counters above. */
  brokerObserver: BrokerObserver
  /** Feeds the storage monitor's pings into the ping histogram and failure counter. */
  recordStoragePing: (result: PingResult) => void
}

/**
 * Defines silo's metrics in a fresh registry. Gauges are read from `sources` when scraped;
 * counters and histograms are fed through `brokerObserver`, `recordStoragePing` and
 * `httpRequestDuration`.
 */
export function createMetrics(sources: MetricSources): Metrics {
  const registry = new Registry()
  const registers = [registry]
  const name = (suffix: string) => `${METRIC_PREFIX}${suffix}`

  // Note (prom-client 15): the gc and event-loop collectors cannot be stopped, so each app
  // instance leaves a PerformanceObserver and an event-loop-delay monitor behind when closed.
  // One app per process in production; a few per test file.
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX })

  new Gauge({
    name: name('sse_clients'),
    help: 'Open event streams (GET /api/events).',
    registers,
    collect() {
      this.set(sources.sseClients())
    },
  })

  new Gauge<'mode'>({
    name: name('server_mode'),
    help: 'The server mode: 1 for the current mode, 0 for the others.',
    labelNames: ['mode'],
    registers,
    collect() {
      const current = sources.mode()
      for (const mode of Object.keys(MODES)) this.set({ mode }, mode === current ? 1 : 0)
    },
  })

  const eventsPublished = new Counter({
    name: name('events_published_total'),
    help: 'Stored events this process took in from the event log for its subscribers.',
    registers,
  })
  const eventsDelivered = new Counter({
    name: name('events_delivered_total'),
    help: 'Stored events written to event-stream sockets (one per event per subscriber).',
    registers,
  })
  const streamResets = new Counter<'reason'>({
    name: name('sse_stream_resets_total'),
    help:
      'stream.reset events sent, by reason: last_event_id_pruned, last_event_id_unknown ' +
      '(newer than the newest event) or fell_behind (read slower than retention).',
    labelNames: ['reason'],
    registers,
  })
  const slowConsumerCutoffs = new Counter<'reason'>({
    name: name('sse_slow_consumer_cutoffs_total'),
    help:
      'Event-stream clients cut off for reading too slowly: fell_behind (retention pruned ' +
      'what they had not read; sent stream.reset) or stalled_at_shutdown (socket destroyed).',
    labelNames: ['reason'],
    registers,
  })
  const streamsRefused = new Counter<'reason'>({
    name: name('sse_refused_total'),
    help:
      'New event streams refused with 429 too_many_streams, by the cap that refused them: ' +
      'max_streams_per_token or max_streams.',
    labelNames: ['reason'],
    registers,
  })
  const streamsClosed = new Counter<'reason'>({
    name: name('sse_closed_total'),
    help:
      'Open event streams ended with stream.closed because their token lost its right, by ' +
      'reason: token_revoked or token_expired.',
    labelNames: ['reason'],
    registers,
  })
  const storagePingDuration = new Histogram({
    name: name('storage_ping_duration_seconds'),
    help: 'Object storage health pings, failed ones included (a timed-out ping counts its timeout).',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  })
  const storagePingFailures = new Counter({
    name: name('storage_ping_failures_total'),
    help: 'Object storage health pings that failed or timed out.',
    registers,
  })
  const httpRequestDuration = new Histogram<HttpLabel>({
    name: name('http_request_duration_seconds'),
    help:
      'HTTP responses by method, route pattern ("unmatched" for unknown URLs) and status code. ' +
      'An event stream is observed only when the server ends it, with its whole lifetime.',
    labelNames: ['method', 'route', 'status_code'],
    registers,
  })

  // Series that exist from the start, so rates and alerts see a 0 rather than nothing.
  for (const reason of Object.keys(RESET_REASONS)) streamResets.inc({ reason }, 0)
  slowConsumerCutoffs.inc({ reason: 'fell_behind' }, 0)
  slowConsumerCutoffs.inc({ reason: 'stalled_at_shutdown' }, 0)
  for (const reason of Object.keys(REFUSALS)) streamsRefused.inc({ reason }, 0)
  for (const reason of Object.keys(CLOSED_REASONS)) streamsClosed.inc({ reason }, 0)
  storagePingFailures.inc(0)

  const brokerObserver: BrokerObserver = {
    committed: (count) => eventsPublished.inc(count),
    delivered: (count) => eventsDelivered.inc(count),
    reset(reason) {
      streamResets.inc({ reason })
      if (reason === 'fell_behind') slowConsumerCutoffs.inc({ reason })
    },
    stalledDestroyed: () => slowConsumerCutoffs.inc({ reason: 'stalled_at_shutdown' }),
  }

  return {
    registry,
    eventsPublished,
    eventsDelivered,
    streamResets,
    slowConsumerCutoffs,
    streamsRefused,
    streamsClosed,
    storagePingDuration,
    storagePingFailures,
    httpRequestDuration,
    brokerObserver,
    recordStoragePing({ ok, durationMs }) {
      storagePingDuration.observe(durationMs / 1000)
      if (!ok) storagePingFailures.inc()
    },
  }
}
