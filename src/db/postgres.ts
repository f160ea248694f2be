import pg from 'pg'
import type { Database, Queryable, QueryOptions } from './database.js'

export interface PostgresOptions {
  url: string
  poolSize: number
  connectTimeoutMs: number
  /** Told about connection failures the pool recovers from by itself. */
  onError: (err: Error, context: string) => void
}

// int8 (counts, bigserial ids, file sizes) as numbers, as PGlite returns them: ids stay far
// below 2^53, and both drivers must hand the same types to the code above them.
const INT8_OID = 20
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
}

// Names of prepared statements by their text, the same on every connection of the process;
// as many as there are call sites that ask for one.
const statementNames = new Map<string, string>()

function statementName(sql: string): string {
  let name = statementNames.get(sql)
  if (name === undefined) {
    name = `silo_${statementNames.size + 1}`
    statementNames.set(sql, name)
  }
  return name
}

function asQueryable(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    query: async <T>(sql: string, params?: unknown[], options?: QueryOptions) => {
      const result = await client.query(
        options?.prepared
          ? { name: statementName(sql), text: sql, values: params }
          : { text: sql, values: params },
      )
      return { rows: result.rows as T[] }
    },
  }
}

/**
 * A PostgreSQL server through a bounded `pg` pool. The same SQL runs here and on PGlite.
 * A server restart breaks pooled connections; the pool drops them and the next query opens a
 * new one, so the service recovers without a restart of its own.
 */
export function openPostgres(options: PostgresOptions): Database {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    types,
  })
  // An idle connection that breaks (server restart) emits here; without a listener that would
  // be an uncaught exception.
  pool.on('error', (err) => options.onError(err, 'idle database connection failed'))

  return {
    kind: 'postgres',
    ...asQueryable(pool),
    async transaction(fn) {
      const client = await pool.connect()
      let broken: Error | undefined
      // The pool stops listening to a client it has lent out: a server that goes away
      // mid-transaction would make this 'error' an uncaught exception and end the process.
      const onError = (err: Error) => {
        broken ??= err
      }
      client.on('error', onError)
      try {
        await client.query('BEGIN')
        const result = await fn(asQueryable(client))
        await client.query('COMMIT')
        return result
      } catch (err) {
        try {
          await client.query('ROLLBACK')
        } catch (rollbackErr) {
          // The connection itself failed: it must not go back into the pool.
          broken = rollbackErr as Error
        }
        throw err
      } finally {
        client.off('error', onError)
        client.release(broken)
      }
    },
    async ping() {
      await pool.query('SELECT 1')
    },
    async close() {
      await pool.end()
    },
    listen: (channel, onNotify, onReconnect, onLost) =>
      listenWithReconnect(options, channel, onNotify, onReconnect, onLost),
  }
}

/**
 * LISTENs on a dedicated connection (pooled ones cannot hold a LISTEN). When it breaks, it is
 * reopened with backoff and `onReconnect` runs, because notifications sent meanwhile are lost
 * and the caller must catch up by reading.
 */
async function listenWithReconnect(
  options: PostgresOptions,
  channel: string,
  onNotify: (payload: string) => void,
  onReconnect: () => void,
  onLost?: () => void,
): Promise<() => Promise<void>> {
  let client: pg.Client | null = null
  let stopped = false
  let retryTimer: NodeJS.Timeout | undefined
  let delayMs = 100

  const connect = async (): Promise<void> => {
    const next = new pg.Client({
      connectionString: options.url,
      connectionTimeoutMillis: options.connectTimeoutMs,
    })
    next.on('notification', (message) => {
      if (message.channel === channel) onNotify(message.payload ?? '')
    })
    const lost = (err: Error) => {
      if (client !== next) return
      client = null
      onLost?.()
      options.onError(err, `notification connection for ${channel} lost; reconnecting`)
      void next.end().catch(() => {})
      schedule()
    }
    next.on('error', lost)
    next.on('end', () => lost(new Error('connection ended')))
    await next.connect()
    await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
    if (stopped) {
      await next.end()
      return
    }
    client = next
    delayMs = 100
  }

  const schedule = () => {
    if (stopped) return
    retryTimer = setTimeout(() => {
      connect()
        .then(() => onReconnect())
        .catch((err: Error) => {
          options.onError(err, `notification connection for ${channel} failed; retrying`)
          delayMs = Math.min(delayMs * 2, 5000)
          schedule()
        })
    }, delayMs)
    retryTimer.unref()
  }

  await connect()
  return async () => {
    stopped = true
    clearTimeout(retryTimer)
    // Cleared first: the 'end' it emits is ours, not a lost connection to report and reopen.
    const last = client
    client = null
    await last?.end().catch(() => {})
  }
}
