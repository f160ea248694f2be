import type { Config } from '../config.js'
import { filesystemStorage } from './filesystemStorage.js'
import { minioStorage } from './minioStorage.js'
import type { ObjectStorage } from './objectStorage.js'

export function openStorage(config: Config['storage']): ObjectStorage {
  return config.minio ? minioStorage(config.minio, config.timeout) : filesystemStorage(config.path)
}
