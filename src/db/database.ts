/** The one SQL dialect silo speaks: PostgreSQL, through PGlite or a real server. */
export interface Queryable {
  query<T = Record<string, unknown>>(
    sql: string,
    params?: unknown[],
    options?: QueryOptions,
  ): Promise<{ rows: T[] }>
}

export interface QueryOptions {
  /**
   * The text is one of a few fixed, hot statements (a create, an event append): PostgreSQL
   * parses and plans it once per connection and then only binds it. PGlite, whose API has no
   * named statements, runs it as any other.
   */
  prepared?: boolean
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres'
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>
  close(): Promise<void>
  /**
   * Calls `onNotify` with the payload of every NOTIFY on `channel` from any process, and
   * `onReconnect` after notifications may have been missed (once LISTENing again). `onLost`
   * runs as soon as the connection is known to be broken, before notices can be missed
   * unnoticed by anyone waiting for the reconnect. Absent where one process is all there is
   * (PGlite).
   */
  listen?(
    channel: string,
    onNotify: (payload: string) => void,
    onReconnect: () => void,
    onLost?: () => void,
  ): Promise<() => Promise<void>>
}

/** Postgres error codes silo maps to client errors. */
export const PG_UNIQUE_VIOLATION = '23505'
export const PG_FOREIGN_KEY_VIOLATION = '23503'

export function pgErrorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err
    ? String((err as { code: unknown }).code)
    : undefined
}

// Codes meaning the database is not there (connection refused, reset, timed out, the server
// shutting down or starting up), as opposed to a query it refused.
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  '57P01',
  '57P02',
  '57P03',
])

/** True when `err` says the database could not be reached, not that a query was wrong. */
export function isDatabaseUnavailable(err: unknown): boolean {
  const code = pgErrorCode(err)
  if (code && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true
  const message = err instanceof Error ? err.message : ''
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(
    message,
  )
}
