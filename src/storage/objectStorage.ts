import type { Readable } from 'node:stream'

/** A byte range, both ends inclusive, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number
  end: number
}

/**
 * Where item files live. Both backends answer ping(), which the storage monitor calls with an
 * AbortSignal that fires when its timeout passes. Keys are made by silo itself
 * (`items/{pn}/rev/{n}/{filename}`), never taken from a client unchecked.
 */
export interface ObjectStorage {
  readonly kind: 'filesystem' | 'minio'
  /** Resolves when the storage can take reads and writes; rejects (or is aborted) otherwise. */
  ping(signal: AbortSignal): Promise<void>
  /**
   * Streams `body` to `key`. The object is visible under `key` only once this resolves; when it
   * rejects (storage error, or `body` errors because the client vanished or sent too much)
   * nothing is left under `key`.
   */
  put(key: string, body: Readable, contentType: string): Promise<void>
  /** Opens the object (or `range` of it) for reading; rejects if it does not exist. */
  get(key: string, range?: ByteRange): Promise<Readable>
  /** Removes the object; removing a missing object is not an error. */
  remove(key: string): Promise<void>
  /** Moves an object to another key: once this resolves it is there and no longer at `from`. */
  move(from: string, to: string): Promise<void>
  /**
   * Removes what uploads that never completed left behind (a crash, a kill -9) and that has
   * not changed for `olderThanMs`: objects under STAGING_PREFIX, a backend's own temporary
   * files, empty folders, unfinished multipart uploads. Returns how many it removed.
   */
  removeLeftovers(olderThanMs: number): Promise<number>
  close(): Promise<void>
}

/** Where uploads are written before their revision number is known (see domain/revisions.ts). */
export const STAGING_PREFIX = 'uploads/'

/** Raised by a backend when an operation failed because the storage did not work. */
export class StorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StorageError'
  }
}
