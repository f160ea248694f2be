import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Where SILO_TEST_DATABASE_URL names a PostgreSQL server, every test server gets a database of
 * its own, cloned from a migrated template (cheap, like copying the PGlite folder). The
 * database's name is kept in the test's data folder, so a restart on the same folder reopens
 * the same database, as it would reopen the same PGlite files.
 */

export const TEMPLATE_DATABASE = 'silo_test_template'

export function testDatabaseServer(): string | undefined {
  return process.env.SILO_TEST_DATABASE_URL || undefined
}

/** The URL of database `name` on the test server. */
export function databaseUrl(name: string): string {
  const url = new URL(testDatabaseServer() as string)
  url.pathname = `/${name}`
  return url.toString()
}

/** Runs one SQL statement synchronously with psql (CREATE DATABASE cannot run in a transaction). */
export function psql(sql: string, database = 'postgres'): string {
  return execFileSync('psql', [databaseUrl(database), '-v', 'ON_ERROR_STOP=1', '-Atqc', sql], {
    encoding: 'utf8',
  })
}

const MARKER = 'pg-database'

/** Creates a fresh database for a test data folder and records it there. */
export function createDatabaseFor(dataDir: string): void {
  const name = `silo_t_${randomBytes(6).toString('hex')}`
  psql(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DATABASE}`)
  writeFileSync(join(dataDir, MARKER), name)
}

/** The database URL recorded for a data folder, if the tests run on PostgreSQL. */
export function databaseUrlFor(dataDir: string): string | undefined {
  const marker = join(dataDir, MARKER)
  return existsSync(marker) ? databaseUrl(readFileSync(marker, 'utf8').trim()) : undefined
}

export function dropDatabaseFor(dataDir: string): void {
  const marker = join(dataDir, MARKER)
  if (!existsSync(marker)) return
  psql(`DROP DATABASE IF EXISTS ${readFileSync(marker, 'utf8').trim()} WITH (FORCE)`)
}
