#!/usr/bin/env node
import { userInfo } from 'node:os'
import { parseArgs } from 'node:util'
import { loadConfig } from './config.js'
import { migrate } from './db/migrations.js'
import { openDatabase } from './db/openDatabase.js'
import { cliActor } from './domain/context.js'
import { AppError } from './domain/errors.js'
import {
  ROLES,
  type Role,
  createToken,
  listTokens,
  revokeToken,
  tokenExpiry,
} from './domain/tokens.js'

const USAGE = `usage:
  silod token create --role viewer|editor|admin --name NAME [--expires-in DURATION] [--config FILE]
  silod token list [--config FILE]
  silod token revoke ID [--config FILE]

Works on the configured database directly (database.url, or the embedded PGlite folder). An
embedded database can be opened by one process at a time: while the server runs, use
POST /api/admin/tokens instead.

--expires-in takes a duration such as 3600s, 12h or 30d; without it the token never expires.`

/** The OS user running the command; a container may have no passwd entry for it. */
function osUser(): string {
  try {
    return userInfo().username
  } catch {
    return process.env.USER ?? `uid ${process.getuid?.() ?? '?'}`
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      role: { type: 'string' },
      name: { type: 'string' },
      'expires-in': { type: 'string' },
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  const [group, action, arg] = positionals
  if (values.help || group !== 'token' || !action) {
    process.stdout.write(`${USAGE}\n`)
    return values.help ? 0 : 2
  }
  const config = loadConfig({ file: values.config ?? process.env.SILO_CONFIG, env: process.env })
  const db = await openDatabase(config.database, (err, context) =>
    process.stderr.write(`silod: ${context}: ${err.message}\n`),
  )
  // Whoever runs the command line on the server's machine; there is no token to name.
  const actor = cliActor(osUser())
  try {
    await migrate(db)
    if (action === 'create') {
      const role = values.role as Role
      if (!ROLES.includes(role) || !values.name) {
        process.stderr.write(`silod: --role (${ROLES.join('|')}) and --name are required\n`)
        return 2
      }
      let expiresAt
      try {
        expiresAt = tokenExpiry({ expires_in: values['expires-in'] })
      } catch (err) {
        if (!(err instanceof AppError)) throw err
        process.stderr.write(`silod: ${err.message.replace('expires_in', '--expires-in')}\n`)
        return 2
      }
      const created = await createToken(db, {
        name: values.name,
        role,
        expiresAt,
        createdBy: actor,
      })
      const expiry = created.expires_at ? `, expires ${created.expires_at}` : ''
      process.stdout.write(
        `created ${created.role} token #${created.id} "${created.name}"${expiry} (shown only now):\n${created.token}\n`,
      )
    } else if (action === 'list') {
      for (const t of await listTokens(db)) {
        const expiry = t.expires_at ? `expires ${t.expires_at}` : 'never expires'
        const by = t.created_by ? `by ${t.created_by.name}` : 'by ?'
        process.stdout.write(
          `${t.id}\t${t.role}\t${t.prefix}…\t${t.created_at}\t${by}\t${expiry}\t${t.name}\n`,
        )
      }
    } else if (action === 'revoke' && arg && /^[0-9]+$/.test(arg)) {
      await revokeToken(db, Number(arg), actor)
      process.stdout.write(`revoked token #${arg}\n`)
    } else {
      process.stdout.write(`${USAGE}\n`)
      return 2
    }
    return 0
  } finally {
    await db.close()
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`silod: ${(err as Error).message}\n`)
    process.exit(1)
  },
)
