import type { Config } from '../config.js'
import type { Database } from './database.js'
import { openPglite } from './pglite.js'
import { openPostgres } from './postgres.js'

/** PostgreSQL when `database.url` is set, else embedded PGlite under `database.data_dir`. */
export function openDatabase(
  config: Config['database'],
  onError: (err: Error, context: string) => void,
): Promise<Database> {
  if (!config.url) return openPglite(config.data_dir, { sharedBuffers: config.shared_buffers })
  return Promise.resolve(
    openPostgres({
      url: config.url,
      poolSize: config.pool_size,
      connectTimeoutMs: config.connect_timeout,
      onError,
    }),
  )
}
