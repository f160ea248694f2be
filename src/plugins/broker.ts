import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { Broker } from '../events/broker.js'
import { EVENTS_CHANNEL, databaseEventSource, pruneEvents } from '../events/eventLog.js'

declare module 'fastify' {
  interface FastifyInstance {
    broker: Broker
    /** Applies event retention now (also runs at start-up and every `events.prune_interval`). */
    applyRetention: () => Promise<void>
  }
}

/**
 * Decorates `app.broker`, wakes it for other replicas' commits, and applies event retention on a
 * timer. The lifecycle plugin ends the streams when the server closes.
 */
export default fp<{ events: Config['events'] }>(
  async (app, { events }) => {
    const broker = new Broker({
      source: databaseEventSource(app.db),
      windowSize: events.memory_window,
      retryMs: events.retry,
      heartbeatMs: events.heartbeat_interval,
      onError: (err, context) => app.log.error({ err }, `event broker: ${context}`),
    })
    await broker.start()
    app.decorate('broker', broker)
    // Every commit, this replica's or another's, arrives as a notification carrying its newest
    // id; one this broker knows (its own commit) needs no read. After a lost connection the
    // broker catches up by reading, since notifications sent meanwhile are gone.
    const unlisten = app.db.listen
      ? await app.db.listen(
          EVENTS_CHANNEL,
          (newest) => void broker.commitNoticed(Number(newest)),
          () => void broker.eventsCommitted(),
        )
      : async () => {}

    const prune = async () => {
      try {
        broker.notePruned(
          await pruneEvents(app.db, {
            maxCount: events.retention_count,
            maxAgeMs: events.retention_age,
          }),
        )
      } catch (err) {
        app.log.error({ err }, 'event retention failed')
      }
    }
    app.decorate('applyRetention', prune)
    await prune()
    const pruneTimer = setInterval(() => void prune(), events.prune_interval)
    pruneTimer.unref()

    app.addHook('preClose', async () => {
      clearInterval(pruneTimer)
      await unlisten()
    })
  },
  { name: 'broker', dependencies: ['database'] },
)
