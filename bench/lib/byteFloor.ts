import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CHUNKED_FRAMING } from '../../src/events/framing.js'
import { encodeEvent } from '../../src/events/sseEncoding.js'
import type { EventType as CatalogueEventType } from '../../src/events/catalogue.js'
import { analyseDeliveries, type DeliveryReport } from './deliveries.js'
import { cpuTimeMs } from './procfs.js'
import { type CapturedEvent, SseLoad, typeIndex } from './sseLoad.js'

/** What the floor took to get every event to every client. */
export interface FloorRun {
  complete: boolean
  /** From the `go` to the last client having every event, in milliseconds. */
  allDeliveredMs: number
  cpu: { server: number; loadClient: number }
  deliveries: DeliveryReport
}

/**
 * The fan-out floor: `events` (as silo sent them: the same bytes, in chunks of `batchSize`
 * events with its chunked framing) written by a bare node process (floorServer.ts) to `clients`
 * connections of the same load client, timed from the moment it is told to go. What the
 * machine needs for these bytes alone; a burst through silo cannot beat it.
 */
export async function fanOutFloor(options: {
  events: readonly CapturedEvent[]
  clients: number
  batchSize: number
  stallMs: number
}): Promise<FloorRun> {
  const { events, clients, batchSize, stallMs } = options
  const type = events[0]?.type as CatalogueEventType
  const batches: Buffer[] = []
  for (let i = 0; i < events.length; i += batchSize) {
    const encoded = events
      .slice(i, i + batchSize)
      .map((e) => encodeEvent({ id: e.id, type, data: JSON.parse(e.data) as unknown }))
    batches.push(CHUNKED_FRAMING.frame(Buffer.concat(encoded)))
  }
  const dir = mkdtempSync(join(tmpdir(), 'silo-floor-'))
  const offsets = [0]
  for (const batch of batches) offsets.push((offsets[offsets.length - 1] as number) + batch.length)
  writeFileSync(join(dir, 'bytes'), Buffer.concat(batches))
  writeFileSync(join(dir, 'offsets.json'), JSON.stringify(offsets))

  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      new URL('./floorServer.ts', import.meta.url).pathname,
      join(dir, 'bytes'),
      join(dir, 'offsets.json'),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  )
  const exited = new Promise((done) => child.once('exit', done))
  let load: SseLoad | undefined
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = ''
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk
        const match = /^listening (\d+)$/m.exec(out)
        if (match) resolve(Number(match[1]))
      })
      child.once('exit', (code) => reject(new Error(`floor server exited (${code})`)))
    })
    const floorLoad = new SseLoad({ baseUrl: `http://127.0.0.1:${port}` })
    load = floorLoad
    const opened = await floorLoad.open(clients, 100, events.length + 64)
    if (opened.opened < clients) throw new Error(`floor: ${opened.opened}/${clients} connected`)
    floorLoad.beginPhase(type, events.length)
    const serverBefore = cpuTimeMs(child.pid as number)
    const clientBefore = cpuTimeMs(process.pid)
    const goAt = floorLoad.now()
    child.stdin.write('go\n')
    const complete = await floorLoad.waitUntilAllReached(stallMs)
    const cpu = {
      server: cpuTimeMs(child.pid as number) - serverBefore,
      loadClient: cpuTimeMs(process.pid) - clientBefore,
    }
    const ids = events.map((e) => e.id as number)
    const deliveries = analyseDeliveries(floorLoad.connections, typeIndex(type), {
      ids,
      sentAt: new Float64Array(ids.length).fill(goAt),
    })
    return { complete, allDeliveredMs: deliveries.lastDeliveryAt - goAt, cpu, deliveries }
  } finally {
    load?.close()
    child.kill()
    await exited
    rmSync(dir, { recursive: true, force: true })
  }
}
