// Builds the web console into dist/console, unless that build is newer than everything it is
// made from: `npm start` on an unchanged tree must not spend a second on it (README "Two
// commands"). `--force` builds regardless.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'

const web = fileURLToPath(new URL('.', import.meta.url))
const root = join(web, '..')
const output = join(root, 'dist', 'console', 'index.html')

/** The newest modification time among the files under `path`. */
function newest(path) {
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))))
}

const sources = [join(web, 'src'), join(web, 'index.html'), join(web, 'vite.config.ts')]
// A changed dependency (preact, vite) changes the bundle too.
sources.push(join(root, 'package-lock.json'))
const stale =
  process.argv.includes('--force') ||
  !existsSync(output) ||
  Math.max(...sources.map(newest)) > statSync(output).mtimeMs
if (stale) await build({ configFile: join(web, 'vite.config.ts'), logLevel: 'warn' })
