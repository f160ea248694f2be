import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { type Mode, ModeMachine } from '../state/modeMachine.js'
import { StorageMonitor } from '../state/storageMonitor.js'
import type { ObjectStorage } from '../storage/objectStorage.js'
import { AppError } from '../domain/errors.js'
import { reconnectLater } from './reconnectLater.js'
import { SETTINGS_CHANNEL, readFleetSettings } from '../domain/fleetSettings.js'

const PROBES = new Set(['/health', '/ready'])

export interface ServerState {
  modes: ModeMachine
  storageMonitor: StorageMonitor
  /** True from the first shutdown signal on: /ready answers 503 and new requests are refused. */
  readonly shuttingDown: boolean
  /** What the probes show: the mode machine's mode, or `shutting-down` once draining. */
  readonly mode: Mode | 'shutting-down'
  /** Starts the drain: readiness off, SSE clients told and closed. Idempotent. */
  beginShutdown(): void
}

declare module 'fastify' {
  interface FastifyInstance {
    storage: ObjectStorage
    serverState: ServerState
  }
}

/**
 * Owns the mode machine and the storage monitor, publishes every mode change as `server.state`
 * and logs it as one line.
 */
export default fp<{ storage: ObjectStorage; config: Config }>(
  async (app, { storage, config }) => {
    const modes = new ModeMachine({ readOnly: config.server.read_only })
    modes.onChange((change) => {
      app.log.info(change, `server mode ${change.previous} -> ${change.mode}: ${change.reason}`)
      app.broker.broadcast('server.state', change)
    })
    const storageMonitor = new StorageMonitor({
      ping: (signal) => storage.ping(signal),
      intervalMs: config.storage.health_interval,
      timeoutMs: config.storage.timeout,
      failureThreshold: config.storage.failure_threshold,
      onHealthChange: (healthy, reason) => modes.setStorageHealthy(healthy, reason),
    })
    let shuttingDown = false
    const state: ServerState = {
      modes,
      storageMonitor,
      get shuttingDown() {
        return shuttingDown
      },
      get mode() {
        return shuttingDown ? 'shutting-down' : modes.mode
      },
      beginShutdown() {
        if (shuttingDown) return
        shuttingDown = true
        app.log.info('shutting down: readiness off, closing event streams')
        app.broker.close({ type: 'server.state', data: { mode: 'shutting-down' } })
      },
    }
    app.decorate('storage', storage)
    app.decorate('serverState', state)
    // While draining, only probes and the event stream (which answers with an immediate end so
    // clients reconnect elsewhere) are served.
    app.addHook('onRequest', async (request, reply) => {
      if (!shuttingDown || PROBES.has(request.routeOptions.url ?? '')) return
      reply.header('Connection', 'close')
      if (request.routeOptions.config.eventStream) {
        // 200, `retry:` and an end, so the client reconnects elsewhere (EventSource gives up for
        // good on a 5xx). Answered before auth: the database may already be closed.
        return reconnectLater(reply, config.events.retry)
      }
      throw new AppError(503, 'shutting_down', 'the server is shutting down; retry elsewhere', {
        'Retry-After': '1',
      })
    })
    // A response that finishes while the server closes leaves a keep-alive connection that the
    // close already looked at while it was busy; nobody would end it before keepAliveTimeout.
    app.addHook('onResponse', async (request) => {
      if (shuttingDown) request.raw.socket?.end()
    })
    // The fleet's read-only switch lives in the database: read now, and again whenever a replica
    // changes it (NOTIFY) or the notification connection was lost meanwhile.
    const loadFleetSettings = async () => {
      try {
        const settings = await readFleetSettings(app.db)
        modes.setFleetReadOnly(
          settings.read_only,
          `fleet read-only ${settings.read_only ? 'on' : 'off'} (set by ${settings.changed_by || 'default'})`,
        )
      } catch (err) {
        app.log.error({ err }, 'reading the fleet settings failed; keeping the current mode')
      }
    }
    await loadFleetSettings()
    const unlisten = app.db.listen
      ? await app.db.listen(
          SETTINGS_CHANNEL,
          () => void loadFleetSettings(),
          () => void loadFleetSettings(),
        )
      : async () => {}
    await storageMonitor.start()
    // Two kinds of connection would hold the close up, and are destroyed by a sweep while
    // draining. One a client opened but never sent a request on: Node counts it as a request
    // under way and stops enforcing headersTimeout once closing; it goes once it has read
    // nothing over a whole sweep. And one whose every byte has been sent, ending with our FIN
    // (an event stream just ended, a response with `Connection: close`): a browser's
    // EventSource keeps its half open until it reconnects, `events.retry` later.
    const sockets = new Set<Socket>()
    app.server.on('connection', (socket: Socket) => {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
    })
    let silentSweep: NodeJS.Timeout | undefined
    app.addHook('preClose', async () => {
      state.beginShutdown()
      let silent: Socket[] = []
      silentSweep = setInterval(() => {
        for (const socket of silent) if (socket.bytesRead === 0) socket.destroy()
        for (const socket of sockets) if (socket.writableFinished) socket.destroy()
        silent = [...sockets].filter((socket) => socket.bytesRead === 0)
      }, 100)
      silentSweep.unref()
      await unlisten()
    })
    app.addHook('onClose', async () => {
      clearInterval(silentSweep)
      storageMonitor.stop()
      await storage.close()
    })
  },
  { name: 'serverState', dependencies: ['broker'] },
)
