import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import type { MinioConfig } from '../src/config.js'
import { filesystemStorage } from '../src/storage/filesystemStorage.js'
import { minioStorage } from '../src/storage/minioStorage.js'
import { type S3Server, minioConfig, startS3 } from './support/s3.js'

/**
 * What uploads that never completed leave behind is removed by the storage's leftover sweep,
 * on the filesystem and on S3 (README, "Revisions and files"), and nothing a live upload or a
 * revision needs.
 */

const HOUR = 60 * 60 * 1000

async function filesBelow(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true })
  return entries
    .map((e) => `${relative(root, join(e.parentPath, e.name))}${e.isDirectory() ? '/' : ''}`)
    .sort()
}

const dirs: string[] = []
let s3: S3Server | undefined
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true })
  await s3?.close()
  s3 = undefined
})

describe('leftovers of unfinished uploads', () => {
  it('on the filesystem: old temporary files, staged files and empty folders go; the rest stays', async () => {
    // Given a storage folder with revisions, and what crashes left at various ages
    const root = await mkdtemp(join(tmpdir(), 'silo-leftovers-'))
    dirs.push(root)
    const storage = filesystemStorage(root)
    await storage.put('items/P-1/rev/1/a.step', Readable.from([Buffer.from('kept')]), 'model/step')
    const old = new Date(Date.now() - 2 * HOUR)
    const write = async (path: string, age?: Date) => {
      await mkdir(join(root, path, '..'), { recursive: true })
      await writeFile(join(root, path), 'x')
      if (age) await utimes(join(root, path), age, age)
    }
    await write('uploads/.upload-old', old)
    await write('uploads/staged-old', old)
    await write('uploads/.upload-live')
    await write('uploads/staged-live')
    await write('items/P-1/rev/2/.upload-old', old)
    await mkdir(join(root, 'items/P-2/rev/1'), { recursive: true })
    for (const dir of ['items/P-1/rev/2', 'items/P-2/rev/1', 'items/P-2/rev', 'items/P-2']) {
      await utimes(join(root, dir), old, old)
    }

    // When the leftovers older than an hour are removed
    const removed = await storage.removeLeftovers(HOUR)

    // Then only the revision's file, the live upload's files and their folders remain
    expect(await filesBelow(root)).toEqual([
      'items/',
      'items/P-1/',
      'items/P-1/rev/',
      'items/P-1/rev/1/',
      'items/P-1/rev/1/a.step',
      'uploads/',
      'uploads/.upload-live',
      'uploads/staged-live',
    ])
    expect(removed).toBe(7)
  })

  it('on S3: staged objects older than the cutoff go, revisions and younger ones stay', async () => {
    // Given a bucket with a revision and a staged upload
    s3 = await startS3()
    const config = { use_ssl: false, region: 'us-east-1', ...minioConfig(s3.port, 'leftovers') }
    const storage = minioStorage(config as MinioConfig, 5000)
    await storage.ping(AbortSignal.timeout(5000))
    await storage.put('items/P-1/rev/1/a.step', Readable.from([Buffer.from('kept')]), 'model/step')
    await storage.put('uploads/staged', Readable.from([Buffer.from('left')]), 'model/step')

    // When leftovers older than an hour are removed, the staged object is too young to go
    expect(await storage.removeLeftovers(HOUR)).toBe(0)
    // And when everything staged is a leftover (a restart on an embedded database), it goes
    expect(await storage.removeLeftovers(0)).toBe(1)

    // Then the revision is still there and the staged object is not
    await expect(storage.get('items/P-1/rev/1/a.step')).resolves.toBeDefined()
    await expect(storage.get('uploads/staged')).rejects.toThrow()
    await storage.close()
  })
})
