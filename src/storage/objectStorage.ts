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
  close(): Promise<void>
}

/** Raised by a backend when an operation failed because the storage did not work. */
export class StorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StorageError'
  }
}
