import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../src/config.js'
import { openPglite } from '../src/db/pglite.js'
import { testDatabaseServer } from './support/postgres.js'
import { startServer, type TestServer } from './support/server.js'

/** The embedded database's own start-up: where initdb runs and how PGlite is sized. */

const folders: string[] = []
const servers: TestServer[] = []

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close()
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true })
})

function emptyFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'silo-pglite-'))
  folders.push(folder)
  return folder
}

describe('PGlite on a fresh folder', () => {
  it('creates the database, leaves no staging folder behind, and reopens it after a restart', async () => {
    // given an empty folder
    const dataDir = join(emptyFolder(), 'db')

    // when the first start creates the database and writes to it, and a second start reopens it
    const first = await openPglite(dataDir, { sharedBuffers: '8MB' })
    await first.query('CREATE TABLE kept (note text)')
    await first.query("INSERT INTO kept VALUES ('written on the first start')")
    await first.close()
    const second = await openPglite(dataDir, { sharedBuffers: '8MB' })
    const { rows } = await second.query<{ note: string }>('SELECT note FROM kept')
    await second.close()

    // then the data survived and initdb's staging folder is gone
    expect(rows).toEqual([{ note: 'written on the first start' }])
    expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true)
    expect(existsSync(`${dataDir}.initdb`)).toBe(false)
  })

  it('replaces what a start killed during initdb left in the staging folder', async () => {
    // given a half-made staging folder beside a data folder without a database
    const dataDir = join(emptyFolder(), 'db')
    mkdirSync(`${dataDir}.initdb`, { recursive: true })
    writeFileSync(join(`${dataDir}.initdb`, 'PG_VERSION'), '17\n')

    // when the server starts
    const db = await openPglite(dataDir)
    const { rows } = await db.query<{ answer: number }>('SELECT 1 AS answer')
    await db.close()

    // then it made a whole database and cleared the leftover
    expect(rows).toEqual([{ answer: 1 }])
    expect(existsSync(join(dataDir, 'base'))).toBe(true)
    expect(existsSync(`${dataDir}.initdb`)).toBe(false)
  })
})

describe('database.shared_buffers', () => {
  it.skipIf(testDatabaseServer())('sizes the page cache of the app’s PGlite', async () => {
    // given a server configured with a page cache other than the default
    const server = await startServer({ overrides: { database: { shared_buffers: '12MB' } } })
    servers.push(server)

    // when its own database is asked
    const { rows } = await server.app.db.query<{ shared_buffers: string }>('SHOW shared_buffers')

    // then PGlite runs with that setting
    expect(rows).toEqual([{ shared_buffers: '12MB' }])
  })

  it('defaults to 16MB', () => {
    expect(loadConfig({}).database.shared_buffers).toBe('16MB')
  })

  it('refuses a value that is not a size, naming the key and its variable', () => {
    const load = () => loadConfig({ env: { SILO_DATABASE_SHARED_BUFFERS: '16 megabytes' } })
    expect(load).toThrow(ConfigError)
    expect(load).toThrow(
      /database\.shared_buffers \(SILO_DATABASE_SHARED_BUFFERS\) must be a size: a whole number and a unit \(kB, MB, GB\)/,
    )
  })
})
