import { createHash, randomUUID } from 'node:crypto'
import { type Readable, Transform } from 'node:stream'
import type { Queryable } from '../db/database.js'
import { type NewEvent, revisionCreated } from '../events/catalogue.js'
import { type ActingContext, type DomainContext, mutate } from './context.js'
import type { Actor, Revision, RevisionFile, RevisionInput } from './schemas.js'
import { STAGING_PREFIX } from '../storage/objectStorage.js'
import { AppError, notFound } from './errors.js'
import { type IfMatch, requireVersion } from './items.js'

export type { Revision, RevisionFile, RevisionInput } from './schemas.js'

interface RevisionRow {
  part_number: string
  revision_number: number
  comment: string
  properties: Record<string, unknown>
  file_key: string | null
  file_name: string | null
  file_size: string | number | null
  file_sha256: string | null
  content_type: string | null
  created_at: Date | string
  created_by: Actor | null
}

const COLUMNS = `part_number, revision_number, comment, properties, file_key, file_name,
  file_size, file_sha256, content_type, created_at, created_by`

function toRevision(row: RevisionRow): Revision {
  return {
    part_number: row.part_number,
    revision_number: Number(row.revision_number),
    comment: row.comment,
    properties: row.properties,
    file:
      row.file_key === null
        ? null
        : {
            name: row.file_name ?? '',
            size: Number(row.file_size),
            sha256: row.file_sha256 ?? '',
            content_type: row.content_type ?? 'application/octet-stream',
          },
    created_at: new Date(row.created_at).toISOString(),
    created_by: row.created_by,
  }
}

/** The item's version; 404 when there is no such item. */
async function assertItemExists(db: Queryable, partNumber: string, lock = false): Promise<number> {
  const { rows } = await db.query<{ version: number }>(
    `SELECT version FROM items WHERE part_number = $1${lock ? ' FOR UPDATE' : ''}`,
    [partNumber],
  )
  const row = rows[0]
  if (!row) throw notFound(`item ${partNumber}`)
  return Number(row.version)
}

/** Every complete revision of an item, oldest first. */
export async function listRevisions(db: Queryable, partNumber: string): Promise<Revision[]> {
  await assertItemExists(db, partNumber)
  const { rows } = await db.query<RevisionRow>(
    `SELECT ${COLUMNS} FROM revisions WHERE part_number = $1 AND status = 'complete'
     ORDER BY revision_number`,
    [partNumber],
  )
  return rows.map(toRevision)
}

async function findRevision(db: Queryable, partNumber: string, n: number): Promise<RevisionRow> {
  const { rows } = await db.query<RevisionRow>(
    `SELECT ${COLUMNS} FROM revisions
     WHERE part_number = $1 AND revision_number = $2 AND status = 'complete'`,
    [partNumber, n],
  )
  const row = rows[0]
  if (!row) {
    await assertItemExists(db, partNumber)
    throw notFound(`revision ${n} of ${partNumber}`)
  }
  return row
}

export async function getRevision(db: Queryable, partNumber: string, n: number): Promise<Revision> {
  return toRevision(await findRevision(db, partNumber, n))
}

// Numbers are taken under the item's row lock, so two writers never pick the same number; a
// file's number is taken when its upload commits, so an upload that fails takes none. Pending
// rows are counted too: older versions reserved numbers with them (see sweepStaleUploads).
async function nextRevisionNumber(
  tx: Queryable,
  partNumber: string,
  ifMatch: IfMatch,
): Promise<number> {
  const version = await assertItemExists(tx, partNumber, true)
  await requireVersion(tx, partNumber, version, ifMatch)
  const { rows } = await tx.query<{ n: number }>(
    'SELECT coalesce(max(revision_number), 0)::int + 1 AS n FROM revisions WHERE part_number = $1',
    [partNumber],
  )
  return Number(rows[0]?.n)
}

/** A new revision is a change of its item: its version, updated_at and updated_by move on. */
async function revisionAdded(tx: Queryable, revision: Revision, actor: Actor): Promise<NewEvent> {
  const { rows } = await tx.query<{ version: number }>(
    `UPDATE items SET version = version + 1, updated_at = now(), updated_by = $2
     WHERE part_number = $1 RETURNING version`,
    [revision.part_number, JSON.stringify(actor)],
  )
  return revisionCreated(revision, Number(rows[0]?.version), actor)
}

/** A revision without a file: metadata only. */
export async function createRevision(
  ctx: ActingContext,
  partNumber: string,
  input: RevisionInput,
  ifMatch?: IfMatch,
): Promise<Revision> {
  return mutate(ctx, async (tx, emit) => {
    const n = await nextRevisionNumber(tx, partNumber, ifMatch)
    const { rows } = await tx.query<RevisionRow>(
      `INSERT INTO revisions (part_number, revision_number, comment, properties, created_by)
       VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
      [
        partNumber,
        n,
        input.comment ?? '',
        JSON.stringify(input.properties ?? {}),
        JSON.stringify(ctx.actor),
      ],
    )
    const revision = toRevision(rows[0] as RevisionRow)
    emit(await revisionAdded(tx, revision, ctx.actor))
    return revision
  })
}

/** The storage key of a revision's file, as the README's "Revisions and files" fixes it. */
function fileKey(partNumber: string, n: number, filename: string): string {
  return `items/${partNumber}/rev/${n}/${filename}`
}

/** Counts and hashes the bytes flowing through it, and fails once they pass `maxSize`. */
class Digest extends Transform {
  size = 0
  tooLarge: AppError | null = null
  private readonly hash = createHash('sha256')
  constructor(private readonly maxSize: number) {
    super()
  }
  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    done: (err: Error | null, chunk?: Buffer) => void,
  ) {
    this.size += chunk.length
    if (this.size > this.maxSize) {
      this.tooLarge = new AppError(
        413,
        'payload_too_large',
        `files are limited to ${this.maxSize} bytes`,
      )
      done(this.tooLarge)
      return
    }
    this.hash.update(chunk)
    done(null, chunk)
  }
  sha256(): string {
    return this.hash.digest('hex')
  }
}

export interface FileUpload {
  filename: string
  contentType: string
  /** The file's bytes; it errors if the client vanishes. */
  body: Readable
  /** More bytes than this is a 413, and nothing is kept. */
  maxSize: number
}

/** A file stored in the staging area, waiting for its revision number. */
export interface PendingRevision {
  partNumber: string
  stagingKey: string
  file: RevisionFile
}

export const storageUnavailable = (message: string) =>
  new AppError(503, 'storage_unavailable', message, { 'Retry-After': '30' })

/**
 * Streams the file to a key of its own in the staging area while hashing it, and returns the
 * pending revision; `completeRevision` gives it its number and makes it visible,
 * `abandonRevision` removes it. If this rejects, nothing is left behind (and what a crash
 * leaves in the staging area goes at the next start, see removeUploadLeftovers). A failure of
 * the upload's own stream (client gone) or its size is rethrown as is; a storage failure is 503.
 */
export async function storeRevisionFile(
  ctx: DomainContext,
  partNumber: string,
  upload: FileUpload,
  ifMatch?: IfMatch,
): Promise<PendingRevision> {
  // Listening before anything is awaited: the body may fail (client gone, limit passed) while
  // the number is being reserved.
  const digest = new Digest(upload.maxSize)
  let bodyError: unknown
  // Until storage takes the stream, nothing else listens to the digest: without this, a body
  // that fails meanwhile (a cut-short multipart part) would be an uncaught error, which ends
  // the process. The error itself is reported through bodyError and the storage write.
  digest.on('error', () => {})
  upload.body.on('error', (err) => {
    bodyError ??= err
    digest.destroy(err)
  })
  // A stale If-Match is refused before any byte is stored; completeRevision checks it again,
  // under the item's lock, when the upload is done.
  await requireVersion(ctx.db, partNumber, await assertItemExists(ctx.db, partNumber), ifMatch)
  const stagingKey = `${STAGING_PREFIX}${randomUUID()}`
  try {
    if (bodyError !== undefined) throw bodyError
    // Destroyed while the item was looked up (the parser gave up on the body): piping it would
    // wait for bytes that never come.
    if (upload.body.destroyed) {
      bodyError = new AppError(
        400,
        'bad_request',
        'malformed multipart body: the file part ended early',
      )
      throw bodyError
    }
    await ctx.storage.put(stagingKey, upload.body.pipe(digest), upload.contentType)
  } catch (err) {
    // The key is this upload's alone, so whatever a storage kept of it can go.
    await ctx.storage.remove(stagingKey).catch(() => {})
    const clientError = bodyError ?? digest.tooLarge
    if (clientError) throw clientError
    throw storageUnavailable(`storing the file failed: ${(err as Error).message}`)
  }
  return {
    partNumber,
    stagingKey,
    file: {
      name: upload.filename,
      size: digest.size,
      sha256: digest.sha256(),
      content_type: upload.contentType,
    },
  }
}

/**
 * Gives a staged file the next revision number, moves it to its key and commits the revision
 * with its event. The move happens under the item's lock, inside the transaction, so the
 * number and the key agree; if the insert fails the moved file goes too. A commit whose outcome
 * is unknown (the database went away as it answered) keeps the file: a revision must never
 * point to a file that was removed, and a file without a revision is only wasted space.
 */
export async function completeRevision(
  ctx: ActingContext,
  pending: PendingRevision,
  input: RevisionInput,
  ifMatch?: IfMatch,
): Promise<Revision> {
  try {
    return await mutate(ctx, async (tx, emit) => {
      // A deleted item answers 404 here, as it would have before the upload.
      const n = await nextRevisionNumber(tx, pending.partNumber, ifMatch)
      const key = fileKey(pending.partNumber, n, pending.file.name)
      try {
        await ctx.storage.move(pending.stagingKey, key)
      } catch (err) {
        throw storageUnavailable(`storing the file failed: ${(err as Error).message}`)
      }
      try {
        const { rows } = await tx.query<RevisionRow>(
          `INSERT INTO revisions (part_number, revision_number, comment, properties, file_key,
             file_name, file_size, file_sha256, content_type, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${COLUMNS}`,
          [
            pending.partNumber,
            n,
            input.comment ?? '',
            JSON.stringify(input.properties ?? {}),
            key,
            pending.file.name,
            pending.file.size,
            pending.file.sha256,
            pending.file.content_type,
            JSON.stringify(ctx.actor),
          ],
        )
        const revision = toRevision(rows[0] as RevisionRow)
        emit(await revisionAdded(tx, revision, ctx.actor))
        return revision
      } catch (err) {
        await ctx.storage.remove(key).catch(() => {})
        throw err
      }
    })
  } catch (err) {
    await abandonRevision(ctx, pending)
    throw err
  }
}

/** Removes a staged file; what storage cannot remove now, the leftover sweep removes later. */
export async function abandonRevision(ctx: DomainContext, pending: PendingRevision): Promise<void> {
  await ctx.storage.remove(pending.stagingKey).catch(() => {})
}

/**
 * Removes reservations made by older versions of silo (which reserved a number with a pending
 * row while the file was uploaded) older than `olderThanMs`, with their objects. Returns how
 * many were removed.
 */
export async function sweepStaleUploads(ctx: DomainContext, olderThanMs: number): Promise<number> {
  const { rows } = await ctx.db.query<{
    part_number: string
    revision_number: number
    file_key: string
  }>(
    `SELECT part_number, revision_number, file_key FROM revisions
     WHERE status = 'pending' AND created_at < now() - $1 * interval '1 millisecond'`,
    [olderThanMs],
  )
  for (const row of rows) {
    await ctx.storage.remove(row.file_key)
    await ctx.db.query(
      `DELETE FROM revisions WHERE part_number = $1 AND revision_number = $2 AND status = 'pending'`,
      [row.part_number, Number(row.revision_number)],
    )
  }
  return rows.length
}

/** The stored file of a complete revision, for download. */
export async function revisionFile(
  db: Queryable,
  partNumber: string,
  n: number,
): Promise<RevisionFile & { key: string }> {
  const row = await findRevision(db, partNumber, n)
  if (row.file_key === null) throw notFound(`a file in revision ${n} of ${partNumber}`)
  const revision = toRevision(row)
  return { ...(revision.file as RevisionFile), key: row.file_key }
}
