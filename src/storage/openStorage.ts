import type { Config } from '../config.js'
import { filesystemStorage } from './filesystemStorage.js'
import type { ObjectStorage } from './objectStorage.js'

/**
 * Opens the configured storage. The `minio` client is loaded only when `storage.minio` is set:
 * it costs about 34 MiB of RSS, which a server on the embedded default would carry for nothing
 * (see docs/BENCHMARKS.md, "Memory and start").
 */
export async function openStorage(config: Config['storage']): Promise<ObjectStorage> {
  if (!config.minio) return filesystemStorage(config.path)
  const { minioStorage } = await import('./minioStorage.js')
  return minioStorage(config.minio, config.timeout)
}
