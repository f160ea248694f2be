import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import { AppError } from '../domain/errors.js'
import type { Mode } from '../state/modeMachine.js'

const PROBES = new Set(['/health', '/ready'])

export interface Lifecycle {
  /** True from the first shutdown signal on: /ready answers 503 and new requests are refused. */
  readonly shuttingDown: boolean
  /** The mode the probes and the event stream show: `app.modes`'s, or `shutting-down`. */
  readonly mode: Mode | 'shutting-down'
  /** Starts the drain: readiness off, event streams told and ended. Idempotent. */
  beginShutdown(): void
}

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle
  }
}

/**
 * Decorates `app.lifecycle`, the one place that knows whether the server is shutting down, and
 * drains: from the first signal (or `app.close()`) on, it refuses every request but the probes
 * with 503 `shutting_down`, ends the streams after `server.state {"mode":"shutting-down"}`, and
 * ends the connections that would otherwise hold the close up.
 */
export default fp(
  async (app) => {
    let shuttingDown = false
    const lifecycle: Lifecycle = {
      get shuttingDown() {
        return shuttingDown
      },
      get mode() {
        return shuttingDown ? 'shutting-down' : app.modes.mode
      },
      beginShutdown() {
        if (shuttingDown) return
        shuttingDown = true
        app.log.info('shutting down: readiness off, closing event streams')
        app.broker.close({ type: 'server.state', data: { mode: lifecycle.mode } })
      },
    }
    app.decorate('lifecycle', lifecycle)
    app.addHook('onRequest', async (request, reply) => {
      if (!shuttingDown || PROBES.has(request.routeOptions.url ?? '')) return
      reply.header('Connection', 'close')
      throw new AppError(503, 'shutting_down', 'the server is shutting down; retry elsewhere', {
        'Retry-After': '1',
      })
    })
    // A response that finishes while the server closes leaves a keep-alive connection that the
    // close already looked at while it was busy; nobody would end it before keepAliveTimeout.
    app.addHook('onResponse', async (request) => {
      if (shuttingDown) request.raw.socket?.end()
    })
    // Two kinds of connection would hold the close up, and are destroyed by a sweep while
    // draining. One a client opened but never sent a request on: Node counts it as a request
    // under way and stops enforcing headersTimeout once closing; it goes once it has read
    // nothing over a whole sweep. And one whose every byte has been sent, ending with our FIN
    // (an event stream just ended, a response with `Connection: close`): a browser's
    // EventSource keeps its half open until it reconnects, `events.retry` later.
    const sockets = new Set<Socket>()
    // One listener for every socket: a closure (and a once wrapper) per connection costs some
    // 200 bytes each at 10,000 idle event streams.
    function forget(this: Socket) {
      sockets.delete(this)
    }
    app.server.on('connection', (socket: Socket) => {
      sockets.add(socket)
      socket.on('close', forget)
    })
    let silentSweep: NodeJS.Timeout | undefined
    app.addHook('preClose', async () => {
      lifecycle.beginShutdown()
      let silent: Socket[] = []
      silentSweep = setInterval(() => {
        for (const socket of silent) if (socket.bytesRead === 0) socket.destroy()
        for (const socket of sockets) if (socket.writableFinished) socket.destroy()
        silent = [...sockets].filter((socket) => socket.bytesRead === 0)
      }, 100)
      silentSweep.unref()
    })
    app.addHook('onClose', async () => {
      clearInterval(silentSweep)
    })
  },
  { name: 'lifecycle', dependencies: ['broker', 'modes'] },
)
