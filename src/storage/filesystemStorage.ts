import { constants } from 'node:fs'
import { access, mkdir } from 'node:fs/promises'
import type { ObjectStorage } from './objectStorage.js'

export function filesystemStorage(root: string): ObjectStorage {
  return {
    kind: 'filesystem',
    async ping() {
      await mkdir(root, { recursive: true })
      await access(root, constants.R_OK | constants.W_OK)
    },
    async close() {},
  }
}
