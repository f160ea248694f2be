import { readFileSync } from 'node:fs'

/**
 * How many event streams and connections a process can hold, from its file limit: every socket
 * is a file descriptor, and one past the limit is refused by the kernel (EMFILE) whatever it was
 * for: a probe, an API call, a database connection, a file upload.
 */

/** Assumed where the limit cannot be read (not Linux): the usual default soft limit. */
export const FALLBACK_FILE_LIMIT = 1024

/** The soft "Max open files" limit in the text of /proc/<pid>/limits, or null if absent. */
export function parseSoftFileLimit(limits: string): number | null {
  const match = /^Max open files\s+([0-9]+)\s/m.exec(limits)
  return match ? Number(match[1]) : null
}

/** This process's soft file limit (Node raises it to the hard limit at start-up). */
export function readSoftFileLimit(): number {
  try {
    return parseSoftFileLimit(readFileSync('/proc/self/limits', 'utf8')) ?? FALLBACK_FILE_LIMIT
  } catch {
    return FALLBACK_FILE_LIMIT
  }
}

export interface Capacity {
  /** The default `events.max_streams`. */
  maxStreams: number
  /** Connections the HTTP server accepts; those beyond are closed at once. */
  maxConnections: number
}

/**
 * Shares a file limit out. Streams leave max(256, 10 %) of it free: for API requests and probes,
 * the database, files and logs. Connections leave max(128, 5 %) for what is not a client socket,
 * so that a flood of connections is turned away by the server before the process runs out of
 * descriptors for its database and files.
 */
export function capacityFor(fileLimit: number): Capacity {
  const streamReserve = Math.max(256, Math.ceil(fileLimit * 0.1))
  const descriptorReserve = Math.max(128, Math.ceil(fileLimit * 0.05))
  return {
    maxStreams: Math.max(1, fileLimit - streamReserve),
    maxConnections: Math.max(1, fileLimit - descriptorReserve),
  }
}
