import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { Config } from '../config.js'
import { isDatabaseUnavailable } from '../db/database.js'
import { AppError } from '../domain/errors.js'
import type { Principal } from '../domain/tokens.js'
import { CHUNKED_FRAMING, RAW_FRAMING } from '../events/framing.js'
import { encodeRetry, parseLastEventId } from '../events/sseEncoding.js'
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
 * Answers a stream request that cannot be served now with 200, `retry:` and an end, so that
 * EventSource, which gives up for good on any other status, comes back after `retryMs`.
 */
function reconnectLater(reply: FastifyReply, retryMs: number): FastifyReply {
  return reply
    .code(200)
    .type('text/event-stream')
    .header('Cache-Control', 'no-cache')
    .send(encodeRetry(retryMs))
}

/** A refusal that lasts a while: the server is draining, or the database cannot check tokens. */
function isTemporary(err: unknown): boolean {
  return (err instanceof AppError && err.code === 'shutting_down') || isDatabaseUnavailable(err)
}

/**
 * GET /api/events. EventSource gives up for good on any status but 200, so a temporary refusal
 * (see `isTemporary`) is answered with 200, `retry:` and an end, and the client comes back. Only
 * the refusals meant to stop it keep their status: a bad token (401), a role too low (403), a
 * stream cap (429, before any stream byte). For the same reason the query is read leniently: odd
 * values are ignored, not refused.
 */
const eventRoutes: FastifyPluginAsync<{ events: Config['events'] }> = async (app, { events }) => {
  const retryAfter = String(Math.max(1, Math.ceil(events.retry / 1000)))
  app.get(
    '/api/events',
    {
      config: { role: 'viewer', queryToken: true },
      // Also handles what the hooks before the route refuse with (draining, auth).
      errorHandler: (err, _request, reply) => {
        if (!isTemporary(err)) throw err
        return reconnectLater(reply, events.retry)
      },
    },
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
      let ended: Promise<void>
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
        ended = app.broker.subscribe(socket, {
          framing: res.chunkedEncoding ? CHUNKED_FRAMING : RAW_FRAMING,
          lastEventId,
          filter: { types: parseTypes(query.types), partNumber },
          greeting: () => ({ type: 'server.state', data: { mode: app.lifecycle.mode } }),
          owner: principal,
        })
      } catch (err) {
        slot.release()
        throw err
      }
      // Not awaited: a handler suspended for every open stream would hold its frame all along.
      void ended.then(slot.release)
    },
  )
}

export default eventRoutes
