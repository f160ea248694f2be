import type { Multipart, MultipartFile } from '@fastify/multipart'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { create as contentDisposition } from 'content-disposition'
import fresh from 'fresh'
import { Type } from 'typebox'
import { Compile } from 'typebox/compile'
import { AppError } from '../domain/errors.js'
import type { IfMatch } from '../domain/items.js'
import { findValueProblem } from '../domain/jsonValues.js'
import {
  type PendingRevision,
  abandonRevision,
  completeRevision,
  createRevision,
  getRevision,
  listRevisions,
  revisionFile,
  storageUnavailable,
  storeRevisionFile,
} from '../domain/revisions.js'
import { parseByteRange } from './byteRange.js'
import { multipartError } from './multipartError.js'
import { Revision, RevisionInput } from '../domain/schemas.js'
import { ifMatchSchema, ifMatchVersions } from './ifMatch.js'
import { actingFor } from './acting.js'
import { ErrorBody, PartNumber, PartNumberParams, authErrors, bodyErrors } from './schemas.js'

const checkRevisionBody = Compile(RevisionInput)

const RevisionParams = Type.Object({
  pn: PartNumber,
  n: Type.Integer({ minimum: 1, maximum: 2147483647 }),
})

// A media type as RFC 9110 spells it, with optional parameters.
const MEDIA_TYPE = /^[\w!#$%&'*+.^`|~-]+\/[\w!#$%&'*+.^`|~-]+(\s*;.*)?$/
const MULTIPART_FIELDS = new Set(['comment', 'properties'])

const badRequest = (message: string) => new AppError(400, 'bad_request', message)

/** The last path segment of a client's file name, refused if nothing usable is left. */
function safeFilename(raw: string): string {
  const name = (raw.split(/[/\\]/).pop() ?? '').trim()
  if (name === '' || name === '.' || name === '..') throw badRequest('the file part needs a name')
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) throw badRequest('file names cannot hold control codes')
  if (Buffer.byteLength(name) > 255) throw badRequest('file names are limited to 255 bytes')
  return name
}

function fieldValue(part: Multipart & { type: 'field' }): unknown {
  if (part.fieldname === 'properties') {
    try {
      return typeof part.value === 'string' ? JSON.parse(part.value) : part.value
    } catch {
      throw badRequest('the properties field must hold a JSON object')
    }
  }
  return part.value
}

/** Multipart fields are checked here, as the schema and the value rules check a JSON body. */
function validRevisionInput(input: Record<string, unknown>): RevisionInput {
  if (!checkRevisionBody.Check(input)) {
    const first = checkRevisionBody.Errors(input)[0]
    throw badRequest(`invalid revision fields: ${first?.instancePath || '/'} ${first?.message}`)
  }
  const found = findValueProblem(input)
  if (found) throw badRequest(`field ${found.path.slice(1)} ${found.problem}`)
  return input
}

const revisionRoutes: FastifyPluginAsync<{ maxFileSize: number }> = async (
  plain,
  { maxFileSize },
) => {
  const app = plain.withTypeProvider<TypeBoxTypeProvider>()

  const requireStorage = () => {
    if (!app.modes.isStorageHealthy) {
      throw storageUnavailable('file storage is unavailable; metadata still works')
    }
  }

  /**
   * Reads a multipart revision: `comment` and `properties` fields in any order around one `file`
   * part, which is streamed to storage as it arrives. Whatever fails after the file was stored
   * (a bad field after it, the client vanishing, the commit) removes it again.
   */
  async function multipartRevision(request: FastifyRequest, pn: string, ifMatch: IfMatch) {
    requireStorage()
    const fields: Record<string, unknown> = {}
    let pending: PendingRevision | null = null
    try {
      for await (const part of request.parts()) {
        if (part.type === 'field') {
          if (!MULTIPART_FIELDS.has(part.fieldname)) {
            throw badRequest(`unknown field ${part.fieldname}; expected comment, properties, file`)
          }
          if (part.fieldname in fields) throw badRequest(`field ${part.fieldname} given twice`)
          fields[part.fieldname] = fieldValue(part)
          continue
        }
        if (part.fieldname !== 'file') throw badRequest('the file part must be named file')
        // Fields sent before the file are checked before any byte is stored.
        validRevisionInput(fields)
        pending = await storeFile(pn, part, ifMatch)
      }
      if (!pending) throw badRequest('a multipart revision needs a file part')
      const input = validRevisionInput(fields)
      const stored: PendingRevision = pending
      // From here on completeRevision removes the file itself if the commit fails.
      pending = null
      return await completeRevision(actingFor(app, request), stored, input, ifMatch)
    } catch (err) {
      if (pending) await abandonRevision(app.domain, pending)
      throw multipartError(err)
    }
  }

  async function storeFile(
    pn: string,
    part: MultipartFile,
    ifMatch: IfMatch,
  ): Promise<PendingRevision> {
    const filename = safeFilename(part.filename)
    const contentType = part.mimetype || 'application/octet-stream'
    if (!MEDIA_TYPE.test(contentType) || contentType.length > 255) {
      throw badRequest(`invalid content type for the file: ${contentType}`)
    }
    const upload = { filename, contentType, body: part.file, maxSize: maxFileSize }
    return storeRevisionFile(app.domain, pn, upload, ifMatch)
  }

  app.get(
    '/api/items/:pn/revisions',
    {
      config: { role: 'viewer' },
      schema: {
        params: PartNumberParams,
        response: {
          200: Type.Object({ revisions: Type.Array(Revision) }),
          400: ErrorBody,
          404: ErrorBody,
          ...authErrors,
        },
      },
    },
    async (request) => ({ revisions: await listRevisions(app.db, request.params.pn) }),
  )

  app.get(
    '/api/items/:pn/revisions/:n',
    {
      config: { role: 'viewer' },
      schema: {
        params: RevisionParams,
        response: { 200: Revision, 400: ErrorBody, 404: ErrorBody, ...authErrors },
      },
    },
    async (request) => getRevision(app.db, request.params.pn, request.params.n),
  )

  app.post(
    '/api/items/:pn/revisions',
    {
      config: { role: 'editor' },
      schema: {
        params: PartNumberParams,
        // JSON is validated here; multipart is read part by part in the handler.
        body: { content: { 'application/json': { schema: RevisionInput } } },
        headers: ifMatchSchema.headers,
        response: {
          201: Revision,
          ...bodyErrors,
          404: ErrorBody,
          ...ifMatchSchema.response,
          ...authErrors,
        },
      },
    },
    async (request, reply) => {
      const { pn } = request.params
      const ifMatch = ifMatchVersions(request.headers['if-match'])
      // An upload refused part-way leaves unread bytes on the connection: the early-answers
      // plugin reads them away for a bounded time, so that the client gets the answer.
      const revision = request.isMultipart()
        ? await multipartRevision(request, pn, ifMatch)
        : await createRevision(actingFor(app, request), pn, request.body as RevisionInput, ifMatch)
      return reply.code(201).send(revision)
    },
  )

  app.get(
    '/api/items/:pn/revisions/:n/file',
    {
      config: { role: 'viewer' },
      schema: {
        params: RevisionParams,
        response: {
          400: ErrorBody,
          404: ErrorBody,
          416: ErrorBody,
          ...authErrors,
        },
      },
    },
    async (request, reply) => sendFile(request, reply, request.params.pn, request.params.n),
  )

  async function sendFile(request: FastifyRequest, reply: FastifyReply, pn: string, n: number) {
    requireStorage()
    const file = await revisionFile(app.db, pn, n)
    const etag = `"${file.sha256}"`
    // The content type is the uploader's: a browser must neither sniff nor render it here.
    reply
      .header('ETag', etag)
      .header('Accept-Ranges', 'bytes')
      .header('Content-Disposition', contentDisposition(file.name))
      .header('Cache-Control', 'private, no-cache')
      .header('X-Content-Type-Options', 'nosniff')
      .header('Content-Security-Policy', "default-src 'none'; sandbox")
    // If-None-Match as RFC 9110 reads it: `*`, lists, weak tags. Only that header is passed:
    // fresh() would also call any request with `Cache-Control: no-cache` stale, which fetch()
    // adds to every conditional request, and which is a cache's concern, not the origin's.
    const ifNoneMatch = request.headers['if-none-match']
    if (ifNoneMatch && fresh({ 'if-none-match': ifNoneMatch }, { etag })) {
      return reply.code(304).send()
    }
    const ifRange = request.headers['if-range']
    const range =
      ifRange === undefined || ifRange === etag
        ? parseByteRange(request.headers.range, file.size)
        : null
    if (range === 'unsatisfiable') {
      throw new AppError(416, 'range_not_satisfiable', `the file has ${file.size} bytes`, {
        'Content-Range': `bytes */${file.size}`,
      })
    }
    let body
    try {
      body = await app.storage.get(file.key, range ?? undefined)
    } catch (err) {
      request.log.error({ err }, 'reading a revision file from storage failed')
      throw storageUnavailable('reading the file from storage failed')
    }
    reply.type(file.content_type)
    if (range) {
      reply
        .code(206)
        .header('Content-Range', `bytes ${range.start}-${range.end}/${file.size}`)
        .header('Content-Length', range.end - range.start + 1)
    } else {
      reply.header('Content-Length', file.size)
    }
    return reply.send(body)
  }
}

export default revisionRoutes
