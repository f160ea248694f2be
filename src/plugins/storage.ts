import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { StorageMonitor } from '../state/storageMonitor.js'
import type { ObjectStorage } from '../storage/objectStorage.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Where revision files live. */
    storage: ObjectStorage
    /** Pings the storage on a timer; its health decides whether the server is degraded. */
    storageMonitor: StorageMonitor
  }
}

/**
 * Decorates `app.storage` and its health monitor, which reports to the mode machine, and closes
 * both when the server closes. The first ping is awaited, so the server starts in the right mode.
 */
export default fp<{ storage: ObjectStorage; config: Config['storage'] }>(
  async (app, { storage, config }) => {
    const storageMonitor = new StorageMonitor({
      ping: (signal) => storage.ping(signal),
      intervalMs: config.health_interval,
      timeoutMs: config.timeout,
      failureThreshold: config.failure_threshold,
      onHealthChange: (healthy, reason) => app.modes.setStorageHealthy(healthy, reason),
    })
    app.decorate('storage', storage)
    app.decorate('storageMonitor', storageMonitor)
    await storageMonitor.start()
    app.addHook('onClose', async () => {
      storageMonitor.stop()
      await storage.close()
    })
  },
  { name: 'storage', dependencies: ['modes'] },
)
