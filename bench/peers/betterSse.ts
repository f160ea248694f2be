/**
 * The "plain Fastify + better-sse" peer for bench/peers.ts: one channel, every POSTed payload
 * broadcast to it as `event: item.created` with an incrementing `id:`. No database, no auth,
 * no replay: the smallest server a team would write instead of silo's event stream.
 *
 *   node --import tsx bench/peers/betterSse.ts     (prints "listening on http://…")
 */
import { createChannel, createSession } from 'better-sse'
import Fastify from 'fastify'

const app = Fastify({ logger: false, forceCloseConnections: true })
const channel = createChannel()
let lastId = 0

// Payloads are broadcast as the JSON text they arrived as: parse nothing, re-serialise nothing.
app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
  done(null, body)
})

app.get('/api/events', async (request, reply) => {
  reply.hijack()
  const session = await createSession(request.raw, reply.raw, {
    // The data is already one line of JSON; better-sse would JSON.stringify it again.
    serializer: (data) => String(data),
    // silo's heartbeat interval.
    keepAlive: 30_000,
    retry: 2000,
  })
  channel.register(session)
})

app.post('/pub', async (request, reply) => {
  const id = ++lastId
  channel.broadcast(request.body as string, 'item.created', { eventId: String(id) })
  return reply.code(201).send({ id })
})

app.get('/ready', async () => ({ sse_clients: channel.sessionCount }))

const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
process.stdout.write(`listening on ${address}\n`)

const stop = () => {
  void app.close().finally(() => process.exit(0))
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
