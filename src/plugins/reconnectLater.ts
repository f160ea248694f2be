import type { FastifyReply } from 'fastify'
import { encodeRetry } from '../events/sseEncoding.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Marks the event stream, which must never answer a client with a non-200 status. */
    eventStream?: boolean
  }
}

/**
 * Answers an event-stream request that cannot be served now with 200, `retry:` and an end.
 * EventSource gives up for good on any other status; this way it comes back after `retryMs`.
 */
export function reconnectLater(reply: FastifyReply, retryMs: number): FastifyReply {
  return reply
    .code(200)
    .type('text/event-stream')
    .header('Cache-Control', 'no-cache')
    .send(encodeRetry(retryMs))
}
