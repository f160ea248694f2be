import { randomBytes } from 'node:crypto'
import { constants, createReadStream, createWriteStream } from 'node:fs'
import { once } from 'node:events'
import { access, mkdir, rename, rm } from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { type ByteRange, type ObjectStorage, StorageError } from './objectStorage.js'

/**
 * Files under a local folder. A put writes a temporary sibling and renames it into place, so a
 * half-written upload is never visible under its key and a failed one leaves nothing behind.
 */
export function filesystemStorage(root: string): ObjectStorage {
  const base = resolve(root)
  const pathOf = (key: string) => {
    const path = resolve(base, key)
    // Keys are built by silo, but a path outside the root must be impossible all the same.
    if (!path.startsWith(base + sep)) throw new StorageError(`key outside storage: ${key}`)
    return path
  }

  return {
    kind: 'filesystem',
    async ping() {
      await mkdir(base, { recursive: true })
      await access(base, constants.R_OK | constants.W_OK)
    },
    async put(key: string, body: Readable) {
      const path = pathOf(key)
      const temp = join(dirname(path), `.upload-${randomBytes(8).toString('hex')}`)
      try {
        await mkdir(dirname(path), { recursive: true })
        await pipeline(body, createWriteStream(temp, { flags: 'wx' }))
        await rename(temp, path)
      } catch (err) {
        body.destroy()
        await rm(temp, { force: true })
        throw err
      }
    },
    async get(key: string, range?: ByteRange) {
      const stream = createReadStream(pathOf(key), { start: range?.start, end: range?.end })
      // Opened before returning, so that a missing file rejects here, before any response starts.
      await once(stream, 'ready')
      return stream
    },
    async remove(key: string) {
      await rm(pathOf(key), { force: true })
    },
    async close() {},
  }
}
