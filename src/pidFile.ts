import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

/**
 * The pid file operators signal through (`kill -USR1 "$(cat data/silo.pid)"`, README "Modes and
 * signals"): under `npm start` the server runs below npm and a shell, and a signal sent to those
 * by name kills npm instead. Only src/main.ts uses it.
 */

/** Writes this process's pid to `path` (replacing one left by a crash). */
export function writePidFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, `${process.pid}\n`, { mode: 0o644 })
}

/** Removes `path` if it still names this process; another instance may have taken it over. */
export function removePidFile(path: string): void {
  try {
    if (Number(readFileSync(path, 'utf8').trim()) === process.pid) rmSync(path, { force: true })
  } catch {
    // already gone
  }
}
