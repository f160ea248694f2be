import { EventSource } from 'eventsource'
import { afterEach, expect, it } from 'vitest'
import { api, startServer, type TestServer } from './support/server.js'

let server: TestServer | undefined
let source: EventSource | undefined

afterEach(async () => {
  source?.close()
  await server?.close()
})

function nextEvent(es: EventSource, type: string, predicate: (data: any) => boolean): Promise<any> {
  return new Promise((resolve) => {
    const listener = (event: MessageEvent) => {
      const data = JSON.parse(event.data as string)
      if (!predicate(data)) return
      es.removeEventListener(type, listener)
      resolve(data)
    }
    es.addEventListener(type, listener)
  })
}

it('a browser-style EventSource resumes across a server restart with no gap or duplicate', async () => {
  server = await startServer({ keepData: true, overrides: { events: { retry: '50ms' } } })
  const { dataDir, port } = server
  const ids: number[] = []
  const states: string[] = []
  source = new EventSource(`${server.url}/api/events?token=${server.tokens.viewer}`)
  source.addEventListener('item.created', (e) => ids.push(Number(e.lastEventId)))
  source.addEventListener('server.state', (e) => states.push(JSON.parse(e.data).mode))

  const create = async (pn: string) => {
    const res = await api(server as TestServer, 'POST', '/api/items', {
      token: (server as TestServer).tokens.editor,
      body: { part_number: pn, item_type: 'part' },
    })
    expect(res.status).toBe(201)
  }
  const opened = new Promise((resolve) => source?.addEventListener('open', resolve, { once: true }))
  await opened
  await create('E-1')
  await create('E-2')
  await nextEvent(source, 'item.created', (d) => d.part_number === 'E-2')
  const shuttingDown = nextEvent(source, 'server.state', (d) => d.mode === 'shutting-down')
  await server.close()
  await shuttingDown

  // Written while no server runs: the client must get it through replay, not live.
  server = await startServer({
    dataDir,
    overrides: { server: { port }, events: { retry: '50ms' } },
  })
  await create('E-3')
  await nextEvent(source, 'item.created', (d) => d.part_number === 'E-3')
  await create('E-4')
  await nextEvent(source, 'item.created', (d) => d.part_number === 'E-4')
  expect(ids).toEqual([1, 2, 3, 4])
  expect(states).toContain('shutting-down')
})
