import type { FastifyPluginAsync } from 'fastify'
import type { Config } from '../config.js'
import { AppError } from '../domain/errors.js'
import type { Principal } from '../domain/tokens.js'
import { CHUNKED_FRAMING, RAW_FRAMING } from '../events/framing.js'
import { parseLastEventId } from '../events/sseEncoding.js'
import type { StreamRefusal } from '../events/streamSlots.js'

/** Splits `?types=a,b` into a set; an empty or absent list means every type. */
function parseTypes(value: unknown): Set<string> | undefined {
  if (typeof value !== 'string') return undefined
  const types = value
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
  return types.length > 0 ? new Set(types) : undefined
}

const HOLDER: Record<StreamRefusal, string> = {
  max_streams_per_token: 'this token holds',
  max_streams: 'this server holds',
}

/**
 * GET /api/events. Once auth has passed this route answers 200 (EventSource gives up for good on
 * other statuses), so its query is read leniently: odd values are ignored, not refused. The one
 * exception is a client over a stream cap: 429 before any stream byte, so that it stops.
 */
const eventRoutes: FastifyPluginAsync<{ events: Config['events'] }> = async (app, { events }) => {
  const retryAfter = String(Math.max(1, Math.ceil(events.retry / 1000)))
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

      const principal = request.principal as Principal
      const slot = app.streamRights.admit(principal)
      if (typeof slot === 'string') {
        const message = `${HOLDER[slot]} ${events[slot]} event streams, the most allowed (events.${slot})`
        throw new AppError(429, 'too_many_streams', message, { 'Retry-After': retryAfter })
      }
      try {
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
        // The broker writes to the socket itself (one write per batch, framed once for
        // everyone), so it frames the body the way Node's response announced it.
        await app.broker.subscribe(socket, {
          framing: res.chunkedEncoding ? CHUNKED_FRAMING : RAW_FRAMING,
          lastEventId,
          filter: { types: parseTypes(query.types), partNumber },
          greeting: () => ({ type: 'server.state', data: { mode: app.serverState.modes.mode } }),
          owner: principal,
        })
      } finally {
        slot.release()
      }
    },
  )
}

export default eventRoutes
