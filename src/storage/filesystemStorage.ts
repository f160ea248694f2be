import { randomBytes } from 'node:crypto'
import { constants, createReadStream, createWriteStream } from 'node:fs'
import { once } from 'node:events'
import { access, lstat, mkdir, readdir, rename, rm, rmdir } from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import {
  type ByteRange,
  type ObjectStorage,
  STAGING_PREFIX,
  StorageError,
} from './objectStorage.js'

const TEMP_PREFIX = '.upload-'

/**
 * Removes, below `dir`, temporary files of puts and staged uploads unchanged since `cutoff`, then
 * folders left empty that are as old. Returns how many entries went.
 */
async function removeStale(dir: string, cutoff: number, staging: boolean): Promise<number> {
  let removed = 0
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      const inStaging = staging || `${entry.name}/` === STAGING_PREFIX
      // Its age before this sweep removes anything from it (which makes it look new).
      const stale = (await lstat(path)).mtimeMs < cutoff
      removed += await removeStale(path, cutoff, inStaging)
      // A folder being filled right now is younger than the cutoff; rmdir refuses a full one.
      // The staging folder itself stays: every upload goes through it.
      if (stale && !(inStaging && !staging)) {
        removed += await rmdir(path).then(
          () => 1,
          () => 0,
        )
      }
    } else if (
      (staging || entry.name.startsWith(TEMP_PREFIX)) &&
      (await lstat(path)).mtimeMs < cutoff
    ) {
      await rm(path, { force: true })
      removed++
    }
  }
  return removed
}

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
      const temp = join(dirname(path), `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`)
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
    async move(from: string, to: string) {
      const target = pathOf(to)
      await mkdir(dirname(target), { recursive: true })
      await rename(pathOf(from), target)
    },
    async removeLeftovers(olderThanMs: number) {
      await mkdir(base, { recursive: true })
      return removeStale(base, Date.now() - olderThanMs, false)
    },
    async close() {},
  }
}
