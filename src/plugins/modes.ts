import fp from 'fastify-plugin'
import { ModeMachine } from '../state/modeMachine.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The server mode (normal, read-only, degraded) and the switches it derives from. */
    modes: ModeMachine
  }
}

/** Decorates `app.modes`; publishes every mode change as `server.state` and logs it as one line. */
export default fp<{ readOnly: boolean }>(
  async (app, { readOnly }) => {
    const modes = new ModeMachine({ readOnly })
    modes.onChange((change) => {
      app.log.info(change, `server mode ${change.previous} -> ${change.mode}: ${change.reason}`)
      app.broker.broadcast('server.state', change)
    })
    app.decorate('modes', modes)
  },
  { name: 'modes', dependencies: ['broker'] },
)
