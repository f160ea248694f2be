import { Readable } from 'node:stream'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { AppError } from '../domain/errors.js'
import { exportItemsCsv, exportItemsOds } from '../domain/exportItems.js'
import { importItems } from '../domain/importItems.js'
import type { SheetFormat } from '../domain/importRows.js'
import { ODS_MIME_TYPE } from '../sheets/ods.js'
import { multipartError } from './multipartError.js'
import { actingFor } from './acting.js'
import { ImportRejection, ImportResult } from '../domain/schemas.js'
import { ErrorBody, authErrors, bodyErrors } from './schemas.js'

/** Media types each import takes as a raw body (besides multipart/form-data with a `file` part). */
const RAW_TYPES: Record<SheetFormat, readonly string[]> = {
  csv: ['text/csv'],
  ods: [ODS_MIME_TYPE, 'application/octet-stream'],
}

const ImportQuery = Type.Object(
  {
    dry_run: Type.Boolean({
      default: false,
      description: 'compute and answer what would change, write nothing',
    }),
  },
  { additionalProperties: false },
)

function mediaType(request: FastifyRequest): { essence: string; charset?: string } {
  const [essence = '', ...params] = (request.headers['content-type'] ?? '').split(';')
  const charset = params
    .map((p) => p.trim().split('='))
    .find(([name]) => name?.trim().toLowerCase() === 'charset')?.[1]
  return {
    essence: essence.trim().toLowerCase(),
    ...(charset ? { charset: charset.trim().replace(/^"|"$/g, '').toLowerCase() } : {}),
  }
}

const importExportRoutes: FastifyPluginAsync<{ maxSize: number; timeoutMs: number }> = async (
  plain,
  { maxSize, timeoutMs },
) => {
  const app = plain.withTypeProvider<TypeBoxTypeProvider>()

  // Encapsulated in this plugin: other routes still answer 415 to these types. The body is
  // buffered, counted against import.max_size as it arrives (413 as soon as it is crossed), and
  // handed to a worker thread without a copy; reading it happens there.
  app.addContentTypeParser(
    [...RAW_TYPES.csv, ...RAW_TYPES.ods],
    { parseAs: 'buffer', bodyLimit: maxSize },
    (_request, body, done) => done(null, body),
  )

  async function multipartFile(request: FastifyRequest): Promise<Buffer> {
    try {
      const part = await request.file({ limits: { fileSize: maxSize } })
      if (!part) throw new AppError(400, 'invalid_import', 'the multipart body has no file part')
      if (part.fieldname !== 'file') {
        part.file.resume()
        throw new AppError(
          400,
          'invalid_import',
          `the file part is named "${part.fieldname}"; name it "file"`,
        )
      }
      return await part.toBuffer()
    } catch (err) {
      throw multipartError(err, 'invalid_import')
    }
  }

  /** The uploaded file: the raw body, or the `file` part of a multipart body. */
  async function uploadedFile(request: FastifyRequest, format: SheetFormat): Promise<Buffer> {
    const accepted = RAW_TYPES[format]
    const unsupported = () =>
      new AppError(
        415,
        'unsupported_media_type',
        `send the ${format.toUpperCase()} file as ${accepted.join(' or ')}, or as multipart/form-data with a "file" part`,
      )
    if (request.isMultipart()) return multipartFile(request)
    const { essence, charset } = mediaType(request)
    if (!accepted.includes(essence) || !Buffer.isBuffer(request.body)) throw unsupported()
    if (format === 'csv' && charset && charset !== 'utf-8' && charset !== 'utf8') {
      throw new AppError(415, 'unsupported_media_type', 'CSV files must be UTF-8 (charset=utf-8)')
    }
    return request.body
  }

  for (const format of ['csv', 'ods'] as const) {
    app.post(
      `/api/import/${format}`,
      {
        config: { role: 'editor' },
        // The route's own limit too, so that `Expect: 100-continue` is judged against it.
        bodyLimit: maxSize,
        schema: {
          querystring: ImportQuery,
          response: {
            200: ImportResult,
            ...bodyErrors,
            400: ImportRejection,
            409: ErrorBody,
            422: ErrorBody,
            // 503 also when imports and exports already wait for the worker threads.
            ...authErrors,
          },
        },
      },
      async (request) => {
        const bytes = await uploadedFile(request, format)
        return importItems(
          actingFor(app, request),
          app.sheetPool,
          { format, bytes },
          { dryRun: request.query.dry_run, timeoutMs },
        )
      },
    )
  }

  // Streams: no body schema for 200 (the type provider would want a JSON value).
  plain.get(
    '/api/export/items.csv',
    // 503 also when imports and exports already wait for the worker threads.
    { config: { role: 'viewer' }, schema: { response: { ...authErrors } } },
    async (_request, reply) =>
      reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', 'attachment; filename="items.csv"')
        .header('cache-control', 'no-store')
        .send(Readable.from(exportItemsCsv(app.db, app.sheetPool))),
  )

  plain.get(
    '/api/export/items.ods',
    // 503 also when imports and exports already wait for the worker threads.
    { config: { role: 'viewer' }, schema: { response: { ...authErrors } } },
    async (_request, reply) =>
      reply
        .type(ODS_MIME_TYPE)
        .header('content-disposition', 'attachment; filename="items.ods"')
        .header('cache-control', 'no-store')
        .send(Readable.from(exportItemsOds(app.db, app.sheetPool))),
  )
}

export default importExportRoutes
