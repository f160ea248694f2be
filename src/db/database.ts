/** The one SQL dialect silo speaks: PostgreSQL, through PGlite or a real server. */
export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres'
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>
  close(): Promise<void>
  /**
   * Calls `onNotify` for every NOTIFY on `channel` from any process, and `onReconnect` after
   * notifications may have been missed. Absent where one process is all there is (PGlite).
   */
  listen?(
    channel: string,
    onNotify: () => void,
    onReconnect: () => void,
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
