import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { analyseDeliveries, distribution, type DeliveryReport } from '../lib/deliveries.js'
import { ItemWriter, publishAtRate, publishBurst, type PublishTimes } from '../lib/itemWriter.js'
import { CostMeter, type CpuFigures } from '../lib/cost.js'
import { SseLoad, typeIndex } from '../lib/sseLoad.js'
import { PayloadWriter } from './payloadWriter.js'
import { ReferenceStream } from './referenceStream.js'
import type { BenchServer } from './servers.js'

export interface PeerOptions {
  clients: number
  rate: number
  events: number
  burst: number
  writers: number
  idleMs: number
  connectConcurrency: number
  stallMs: number
}

export interface PhaseFigures {
  deliveries: DeliveryReport
  complete: boolean
  /** Publish request round trips (for silo: its database write). */
  roundTrip: ReturnType<typeof distribution>
  publishMs: number
  /** First request sent → last delivery. */
  completionMs: number
  cpu: CpuFigures
  serverCpuMs: number
}

export interface ServerFigures {
  name: string
  loadBefore: string
  baselineRss: number
  baselineRssAsFound: number
  connected: number
  connectMs: number
  serverCounts: number
  idleRss: number
  idleRssAsFound: number
  idleCpu: CpuFigures
  rate: PhaseFigures | null
  burst: PhaseFigures | null
  payloadBytes: number
  failed: boolean
}

const log = (message: string) => process.stderr.write(`[peers] ${message}\n`)

export function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0])
}

/** Waits up to `maxMs` for the 1-minute load average to fall below `below`; returns it. */
export async function waitForQuietMachine(below: number, maxMs: number): Promise<string> {
  const started = performance.now()
  let load = loadAverage()
  while (load >= below && performance.now() - started < maxMs) {
    await sleep(5000)
    load = loadAverage()
  }
  const waited = (performance.now() - started) / 1000
  const raw = readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ')
  return `${raw}${load >= below ? ` (still ≥ ${below} after ${waited.toFixed(0)} s)` : waited > 1 ? ` (after waiting ${waited.toFixed(0)} s)` : ''}`
}

/**
 * One server through the same phases: baseline memory, N idle clients, a fixed-rate phase and
 * a burst. `payloads` maps part numbers to the exact event data silo sent for them, so the
 * peers broadcast the same bytes; `remember` receives silo's payloads for the peers after it.
 */
export async function measureServer(
  server: BenchServer,
  options: PeerOptions,
  loadBefore: string,
  payloadFor: (partNumber: string) => string,
  remember: (payloads: Map<string, string>) => void,
): Promise<ServerFigures> {
  const writer =
    server.name === 'silo'
      ? new ItemWriter(server.url, server.token, options.writers)
      : new PayloadWriter(server.url, '/pub', payloadFor, options.writers)
  const load = new SseLoad({ baseUrl: server.url, token: server.token || undefined })
  let reference: ReferenceStream | null = null
  let failed = false
  try {
    await sleep(1000)
    const baseline = await server.readMemory()
    const opened = await load.open(options.clients, options.connectConcurrency, 1024)
    if (opened.opened < options.clients) {
      failed = true
      log(`${server.name}: ${opened.opened}/${options.clients} connected: ${[...opened.failures]}`)
    }
    reference = new ReferenceStream(server.url, server.token)
    await reference.opened()
    let counted = await server.subscribers()
    for (let i = 0; i < 100 && counted < options.clients + 1; i++) {
      await sleep(100)
      counted = await server.subscribers()
    }
    log(
      `${server.name}: ${opened.opened} clients in ${opened.ms.toFixed(0)} ms; server counts ${counted}`,
    )

    await sleep(2000)
    const idleMeter = new CostMeter(server.pid)
    await sleep(options.idleMs)
    const idleCost = idleMeter.stop()
    const idle = await server.readMemory()

    const phase = async (
      name: string,
      partNumbers: string[],
      publish: (epoch: number) => Promise<PublishTimes>,
    ): Promise<PhaseFigures> => {
      load.beginPhase('item.created', partNumbers.length)
      const meter = new CostMeter(server.pid)
      const times = await publish(load.epoch)
      const complete = await load.waitUntilAllReached(options.stallMs)
      const cost = meter.stop()
      const ref = reference as ReferenceStream
      if (!(await ref.waitFor(partNumbers, options.stallMs))) log(`${name}: reference incomplete`)
      const ranks = ref.remap(partNumbers, load.connections)
      const deliveries = analyseDeliveries(load.connections, typeIndex('item.created'), {
        ids: ranks,
        sentAt: times.sentAt,
      })
      if (!complete || deliveries.lost || deliveries.duplicated || deliveries.outOfOrder)
        failed = true
      log(
        `${server.name} ${name}: p50 ${deliveries.latency.p50.toFixed(1)} ms, p99 ${deliveries.latency.p99.toFixed(1)} ms; lost ${deliveries.lost} dup ${deliveries.duplicated} ooo ${deliveries.outOfOrder}`,
      )
      return {
        deliveries,
        complete,
        roundTrip: distribution(times.roundTrip.slice()),
        publishMs: times.elapsed,
        completionMs: deliveries.lastDeliveryAt - (times.sentAt[0] ?? 0),
        cpu: cost.cpu,
        serverCpuMs: cost.serverCpuMs,
      }
    }

    const latParts = Array.from({ length: options.events }, (_, i) => `LAT-${i + 1}`)
    const rate =
      options.events > 0
        ? await phase('rate', latParts, (epoch) =>
            publishAtRate(writer, latParts, options.rate, epoch),
          )
        : null
    const burstParts = Array.from({ length: options.burst }, (_, i) => `BURST-${i + 1}`)
    const burst =
      options.burst > 0
        ? await phase('burst', burstParts, (epoch) =>
            publishBurst(writer, burstParts, options.writers, epoch),
          )
        : null
    const first = reference.events[0]
    if (server.name === 'silo') remember(reference.payloads())
    return {
      name: server.name,
      loadBefore,
      baselineRss: baseline.rss,
      baselineRssAsFound: baseline.rssAsFound,
      connected: opened.opened,
      connectMs: opened.ms,
      serverCounts: counted,
      idleRss: idle.rss,
      idleRssAsFound: idle.rssAsFound,
      idleCpu: idleCost.cpu,
      rate,
      burst,
      payloadBytes: first ? Buffer.byteLength(first.data) : 0,
      failed,
    }
  } finally {
    reference?.close()
    load.close()
    await writer.close().catch(() => {})
  }
}
