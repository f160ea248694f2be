import type { FastifyPluginAsync } from 'fastify'
import { CHUNKED_FRAMING, RAW_FRAMING } from '../events/framing.js'
import { parseLastEventId } from '../events/sseEncoding.js'

/** Splits `?types=a,b` into a set; an empty or absent list means every type. */
function parseTypes(value: unknown): Set<string> | undefined {
  if (typeof value !== 'string') return undefined
  const types = value
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
  return types.length > 0 ? new Set(types) : undefined
}

/**
 * GET /api/events. Once auth has passed this route always answers 200 (EventSource gives up for
 * good on other statuses), so its query is read leniently: odd values are ignored, not refused.
 */
const eventRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/api/events',
    { config: { role: 'viewer', queryToken: true, eventStream: true } },
    async (request, reply) => {
      const query = (request.query ?? {}) as Record<string, unknown>
      // A malformed header counts as absent, so it does not hide a valid ?last_event_id=.
      const lastEventId =
        parseLastEventId(request.headers['last-event-id']) ?? parseLastEventId(query.last_event_id)
      const partNumber = typeof query.part_number === 'string' ? query.part_number : undefined

      const headers = {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache',
        'X-Accel-Buffering': 'no',
      }
      // Fastify answers HEAD with this handler too: the head is the whole answer.
      if (request.method === 'HEAD') return reply.headers(headers).send()

      reply.hijack()
      const res = reply.raw
      const socket = request.raw.socket
      socket.setTimeout(0)
      socket.setNoDelay(true)
      socket.setKeepAlive(true)
      // Headers set by hooks (CORS) live on the reply, which hijack bypasses.
      for (const [name, value] of Object.entries(reply.getHeaders())) {
        if (value !== undefined) res.setHeader(name, value)
      }
      res.writeHead(200, headers)
      res.flushHeaders()
      // The broker writes to the socket itself (one write per batch, framed once for everyone),
      // so it frames the body the way Node's response announced it.
      await app.broker.subscribe(socket, {
        framing: res.chunkedEncoding ? CHUNKED_FRAMING : RAW_FRAMING,
        lastEventId,
        filter: { types: parseTypes(query.types), partNumber },
        greeting: { type: 'server.state', data: { mode: app.serverState.modes.mode } },
      })
    },
  )
}

export default eventRoutes
