import { PGlite } from '@electric-sql/pglite'

/**
 * Creates a PGlite database (initdb) in the folder named by the one argument, then exits. Run
 * as a child process by openPglite, so that initdb's memory goes with the process.
 */
const dataDir = process.argv[2]
if (!dataDir) {
  process.stderr.write('usage: pgliteInit <data folder>\n')
  process.exit(2)
}
const pg = await PGlite.create(dataDir)
await pg.close()
