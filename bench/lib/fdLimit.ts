import { spawn } from 'node:child_process'
import { openFileLimit } from './procfs.js'

const RELAUNCHED = 'BENCH_FD_LIMIT_RAISED'

/**
 * Makes sure this process (and the server it spawns, which inherits the limit) may open
 * `needed` files. Node cannot call setrlimit itself, so when the soft limit is too low but the
 * hard limit allows it, the script runs itself again under `sh -c 'ulimit -n …; exec …'`.
 * Returns true when the caller should go on, or never returns (exits with the relaunched
 * run's status). Throws when even the hard limit is too low.
 */
export async function ensureOpenFileLimit(needed: number): Promise<true> {
  const { soft, hard } = openFileLimit()
  if (soft >= needed) return true
  if (hard < needed || process.env[RELAUNCHED]) {
    throw new Error(
      `this run needs about ${needed} open files per process but the limit is ${soft} ` +
        `(hard ${hard}); raise it (e.g. \`ulimit -n ${needed}\`, or the hard limit in ` +
        '/etc/security/limits.conf or the container settings) or use fewer --clients',
    )
  }
  const target = hard === Infinity ? needed : hard
  process.stderr.write(`open-file limit ${soft} is too low; running again with ulimit -n ${target}\n`)
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      'ulimit -n "$1" && shift && exec "$@"',
      'sh',
      String(target),
      process.execPath,
      ...process.execArgv,
      ...process.argv.slice(1),
    ],
    { stdio: 'inherit', env: { ...process.env, [RELAUNCHED]: '1' } },
  )
  const code = await new Promise<number>((resolve) => {
    child.once('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0)))
  })
  process.exit(code)
}
