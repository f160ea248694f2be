import fp from 'fastify-plugin'
import { SETTINGS_CHANNEL, readFleetSettings } from '../domain/fleetSettings.js'

/**
 * Applies the fleet's read-only switch, which lives in the database: read at start-up, and again
 * whenever a replica changes it (NOTIFY) or the notification connection was lost meanwhile.
 */
export default fp(
  async (app) => {
    const loadFleetSettings = async () => {
      try {
        const settings = await readFleetSettings(app.db)
        app.modes.setFleetReadOnly(
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
    app.addHook('preClose', async () => {
      await unlisten()
    })
  },
  { name: 'fleetSettings', dependencies: ['database', 'modes'] },
)
