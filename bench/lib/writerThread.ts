/**
 * The writers of WriterThread, on a thread of their own: the load client's event loop is busy
 * reading the streams it measures, and writers on that loop would wait for it before sending
 * their next request, leaving the server idle for the client's sake.
 */
import { performance } from 'node:perf_hooks'
import { parentPort, workerData } from 'node:worker_threads'
import { ItemWriter, publishBurst } from './itemWriter.js'

export interface WriterThreadInput {
  baseUrl: string
  token: string
  connections: number
}

/** A burst to publish; `epoch` is absolute (performance.timeOrigin + performance.now()). */
export interface BurstRequest {
  partNumbers: string[]
  concurrency: number
  epoch: number
}

const { baseUrl, token, connections } = workerData as WriterThreadInput
const port = parentPort
if (!port) throw new Error('writerThread runs as a worker thread')
const writer = new ItemWriter(baseUrl, token, connections)

port.on('message', (request: BurstRequest | 'close') => {
  if (request === 'close') {
    void writer.close().finally(() => port.close())
    return
  }
  // This thread's clock has its own origin: times are made relative to the caller's epoch.
  const epoch = request.epoch - performance.timeOrigin
  publishBurst(writer, request.partNumbers, request.concurrency, epoch).then(
    (times) =>
      port.postMessage({ times }, [
        times.sentAt.buffer as ArrayBuffer,
        times.roundTrip.buffer as ArrayBuffer,
      ]),
    (err: unknown) => port.postMessage({ error: String((err as Error).stack ?? err) }),
  )
})
