import { ODS_MIME_TYPE } from '../sheets/ods.js'
import type { JsonSchema, ResponseSchema } from './responses.js'

/**
 * What a route schema cannot say about an operation: request headers a handler reads itself
 * (Fastify would validate and reject them if the route declared them), response headers, and
 * bodies that are not JSON. Keyed by `METHOD url` as the route registers it. The OpenAPI test
 * checks that every key names a registered route, so an entry cannot outlive its route.
 */
export interface OperationExtras {
  /** Query parameters of a route that reads its query itself. */
  query?: Record<string, JsonSchema & { description: string }>
  /** Request headers, as `in: header` parameters. */
  requestHeaders?: Record<string, JsonSchema & { description: string }>
  /** Request bodies other than the JSON the route schema validates, by media type. */
  requestBodies?: Record<string, JsonSchema>
  /** Responses to add, or headers to add to the route's own, by status code. */
  responses?: Record<string, ResponseSchema>
}

const etag = (what: string) => ({ type: 'string', description: `The ${what}'s entity tag.` })

const sheetUpload = (mediaTypes: readonly string[]) => ({
  ...Object.fromEntries(
    mediaTypes.map((type) => [type, { schema: { type: 'string', format: 'binary' } }]),
  ),
  'multipart/form-data': {
    schema: {
      type: 'object',
      required: ['file'],
      properties: { file: { type: 'string', format: 'binary' } },
    },
  },
})

const attachment = (mediaType: string, filename: string): ResponseSchema => ({
  description: `Every item as a sheet (\`${filename}\`), streamed.`,
  content: { [mediaType]: { schema: { type: 'string', format: 'binary' } } },
  headers: {
    'Content-Disposition': { type: 'string', description: `attachment; filename="${filename}"` },
  },
})

export const operationExtras: Record<string, OperationExtras> = {
  'GET /api/items/:pn': {
    responses: {
      200: {
        headers: {
          ETag: {
            type: 'string',
            description:
              'The item\'s version as `"<version>"`: send it back as `If-Match` on a write.',
          },
        },
      },
    },
  },
  'GET /api/items/:pn/revisions/:n/file': {
    requestHeaders: {
      'If-None-Match': {
        type: 'string',
        description: 'ETags from an earlier answer (or `*`); a match answers 304 without a body.',
      },
      Range: {
        type: 'string',
        description: 'One byte range, `bytes=<first>-<last>` (or `bytes=-<suffix>`); answers 206.',
      },
      'If-Range': {
        type: 'string',
        description: 'The ETag the client holds: the Range applies only while it still matches.',
      },
    },
    responses: {
      200: {
        description: 'The file, with the content type it was uploaded with.',
        content: { '*/*': { schema: { type: 'string', format: 'binary' } } },
        headers: {
          ETag: etag('file (its SHA-256)'),
          'Accept-Ranges': { type: 'string', enum: ['bytes'] },
          'Content-Disposition': { type: 'string', description: 'attachment with the file name' },
        },
      },
      206: {
        description: 'The requested byte range of the file.',
        content: { '*/*': { schema: { type: 'string', format: 'binary' } } },
        headers: {
          ETag: etag('file'),
          'Content-Range': { type: 'string', description: '`bytes <first>-<last>/<size>`' },
        },
      },
      304: { type: 'null', description: 'Not Modified: If-None-Match matched.' },
      416: {
        headers: { 'Content-Range': { type: 'string', description: '`bytes */<size>`' } },
      },
    },
  },
  'POST /api/items/:pn/revisions': {
    requestBodies: {
      'multipart/form-data': {
        schema: {
          type: 'object',
          required: ['file'],
          properties: {
            comment: { type: 'string' },
            properties: { type: 'string', description: 'A JSON object, as text.' },
            file: { type: 'string', format: 'binary', description: 'Streamed to storage.' },
          },
        },
      },
    },
  },
  'POST /api/import/csv': { requestBodies: sheetUpload(['text/csv']) },
  'POST /api/import/ods': {
    requestBodies: sheetUpload([ODS_MIME_TYPE, 'application/octet-stream']),
  },
  'GET /api/export/items.csv': {
    responses: { 200: attachment('text/csv', 'items.csv') },
  },
  'GET /api/export/items.ods': {
    responses: { 200: attachment(ODS_MIME_TYPE, 'items.ods') },
  },
  'GET /metrics': {
    responses: {
      200: {
        description: 'This process’s metrics in the Prometheus text format (README, "Metrics").',
        content: { 'text/plain; version=0.0.4': { schema: { type: 'string' } } },
      },
    },
  },
}
