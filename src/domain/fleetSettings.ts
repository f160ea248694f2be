import type { Database, Queryable } from '../db/database.js'

/** The NOTIFY channel that tells every replica the fleet settings changed. */
export const SETTINGS_CHANNEL = 'silo_settings'

export interface FleetSettings {
  read_only: boolean
  changed_by: string
}

export async function readFleetSettings(db: Queryable): Promise<FleetSettings> {
  const { rows } = await db.query<FleetSettings>('SELECT read_only, changed_by FROM fleet_settings')
  return rows[0] ?? { read_only: false, changed_by: '' }
}

/** Stores the fleet's read-only switch; every replica is told when the change commits. */
export async function setFleetReadOnly(
  db: Database,
  readOnly: boolean,
  changedBy: string,
): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(
      'UPDATE fleet_settings SET read_only = $1, changed_by = $2, changed_at = now()',
      [readOnly, changedBy],
    )
    await tx.query('SELECT pg_notify($1, $2)', [SETTINGS_CHANNEL, ''])
  })
}
