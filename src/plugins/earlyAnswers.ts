import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'

/**
 * An answer given before the request's body has all arrived (413, 401, 415 …) must reach the
 * client (README, "Bad input"). Two things stand in the way:
 *
 * - Closing the connection right after such an answer resets it while the client is still
 *   sending, and a reset makes the client's system throw the answer away unread (Python's
 *   http.client, which sends the whole body before reading, sees only a broken pipe). Such an
 *   answer keeps the connection instead, as nginx's lingering close does: Node reads the rest
 *   of the body and drops it, for at most LINGER_MS, and only a body still arriving then has
 *   its connection cut.
 * - Node answers `Expect: 100-continue` at once, inviting a body the route may refuse. Here
 *   `100 Continue` is sent only when the body is about to be read, after auth, and not when its
 *   declared length is already over the route's limit.
 */

const LINGER_MS = 5000

export default fp(
  async (app) => {
    app.addHook('onSend', async (request, reply, payload) => {
      const incoming = request.raw
      if (incoming.complete) return payload
      reply.removeHeader('connection')
      reply.raw.once('finish', () => {
        const timer = setTimeout(() => {
          if (!incoming.complete) incoming.socket.destroy()
        }, LINGER_MS)
        timer.unref()
        incoming.socket.once('close', () => clearTimeout(timer))
      })
      return payload
    })

    // With a listener here Node no longer sends 100 Continue by itself.
    app.server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
      app.server.emit('request', request, response)
    })
    app.addHook('preParsing', async (request, reply, payload) => {
      if (request.headers.expect?.toLowerCase() !== '100-continue') return payload
      // Multipart uploads are streamed and bounded by their route as they arrive.
      const limit = request.isMultipart() ? Infinity : request.routeOptions.bodyLimit
      const declared = Number(request.headers['content-length'] ?? 0)
      if (!(declared > limit)) reply.raw.writeContinue()
      return payload
    })
  },
  { name: 'earlyAnswers' },
)
