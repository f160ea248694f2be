/**
 * Where item files live. Both backends answer ping(), which the storage monitor calls with an
 * AbortSignal that fires when its timeout passes.
 */
export interface ObjectStorage {
  readonly kind: 'filesystem' | 'minio'
  /** Resolves when the storage can take reads and writes; rejects (or is aborted) otherwise. */
  ping(signal: AbortSignal): Promise<void>
  close(): Promise<void>
}
