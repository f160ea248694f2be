import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { migrate } from '../../src/db/migrations.js'
import { openPglite } from '../../src/db/pglite.js'
import { openPostgres } from '../../src/db/postgres.js'
import { TEMPLATE_DATABASE, databaseUrl, psql, testDatabaseServer } from './postgres.js'

/**
 * Builds dist/ once (process tests spawn the real entry point) and creates one migrated PGlite
 * folder that every test copies: creating a folder costs seconds, copying it milliseconds. With
 * SILO_TEST_DATABASE_URL it also makes the PostgreSQL template every test database is cloned from.
 */
export default async function setup(project: TestProject) {
  execFileSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' })
  const root = mkdtempSync(join(tmpdir(), 'silo-test-'))
  const template = join(root, 'template-db')
  const db = await openPglite(template)
  await migrate(db)
  await db.close()
  project.provide('templateDb', template)
  if (testDatabaseServer()) {
    psql(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE} WITH (FORCE)`)
    psql(`CREATE DATABASE ${TEMPLATE_DATABASE}`)
    const pg = openPostgres({
      url: databaseUrl(TEMPLATE_DATABASE),
      poolSize: 1,
      connectTimeoutMs: 5000,
      onError: () => {},
    })
    await migrate(pg)
    await pg.close()
  }
  return () => rmSync(root, { recursive: true, force: true })
}

declare module 'vitest' {
  export interface ProvidedContext {
    templateDb: string
  }
}
