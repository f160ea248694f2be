/**
 * The probe loop of ProbeSampler, on a thread of its own: the load client's event loop is busy
 * reading the streams it measures, and a probe asked from that loop would time the client's own
 * backlog, not the server's answer.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { parentPort, workerData } from 'node:worker_threads'

export interface ProbeThreadInput {
  url: string
  everyMs: number
}

/** What the thread posts once it has stopped. */
export interface ProbeThreadResult {
  times: number[]
  failures: number
  unansweredMs: number
}

const { url, everyMs } = workerData as ProbeThreadInput
const port = parentPort
if (!port) throw new Error('probeThread runs as a worker thread')

const times: number[] = []
const abort = new AbortController()
let failures = 0
let stopped = false
let inFlightSince: number | null = null
let unansweredMs = 0

port.once('message', () => {
  stopped = true
  if (inFlightSince !== null) unansweredMs = performance.now() - inFlightSince
  abort.abort()
})

while (!stopped) {
  const started = performance.now()
  inFlightSince = started
  try {
    const res = await fetch(url, { signal: abort.signal })
    await res.arrayBuffer()
    if (res.ok) times.push(performance.now() - started)
    else failures++
  } catch {
    if (!stopped) failures++
  }
  inFlightSince = null
  const left = everyMs - (performance.now() - started)
  if (left > 0 && !stopped) await sleep(left)
}
port.postMessage({ times, failures, unansweredMs } satisfies ProbeThreadResult)
