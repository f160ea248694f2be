import type { Config } from '../config.js'
import type { Database } from './database.js'
import { openPglite } from './pglite.js'

/** PostgreSQL when `database.url` is set, else embedded PGlite under `database.data_dir`. */
export async function openDatabase(
  config: Config['database'],
  onError: (err: Error, context: string) => void,
): Promise<Database> {
  if (!config.url) return openPglite(config.data_dir, { sharedBuffers: config.shared_buffers })
  // Loaded only for PostgreSQL: `pg` costs the embedded default some 14 MiB that it never uses.
  const { openPostgres } = await import('./postgres.js')
  return openPostgres({
    url: config.url,
    poolSize: config.pool_size,
    connectTimeoutMs: config.connect_timeout,
    onError,
  })
}
