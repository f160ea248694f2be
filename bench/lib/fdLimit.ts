import { openFileLimit } from './procfs.js'

/**
 * Every SSE connection holds one file descriptor in the load client and one in the server.
 * Node raises its own soft RLIMIT_NOFILE to the hard limit at start-up (and the server, a node
 * child, does the same), so the hard limit is the one that counts: `ulimit -n` in the calling
 * shell can lower it but only root (or the container's settings) can raise it. Returns the
 * limit in force, or an explanation of what to change.
 */
function checkOpenFileLimit(needed: number): { ok: true } | { ok: false; message: string } {
  const { soft, hard } = openFileLimit()
  if (soft >= needed) return { ok: true }
  return {
    ok: false,
    message:
      `this run needs about ${needed} open files per process but the limit is ${soft} ` +
      `(hard ${hard}): raise it (\`ulimit -n ${needed}\` as root, /etc/security/limits.conf, ` +
      "or the container's nofile setting) or use fewer --clients",
  }
}

/**
 * Exits (status 2, with the explanation) unless both processes may hold `clients` connections
 * plus the database, writers and some slack.
 */
export function requireOpenFilesFor(clients: number): void {
  const limit = checkOpenFileLimit(clients + 256)
  if (limit.ok) return
  process.stderr.write(`${limit.message}\n`)
  process.exit(2)
}
