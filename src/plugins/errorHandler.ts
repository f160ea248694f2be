import type { Socket } from 'node:net'
import type { FastifyError } from 'fastify'
import fp from 'fastify-plugin'
import { isDatabaseUnavailable } from '../db/database.js'
import { AppError } from '../domain/errors.js'

const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
}

const CLIENT_ERRORS: Record<string, [number, string, string, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [
    408,
    'Request Timeout',
    'request_timeout',
    'the request did not arrive in time (server.headers_timeout, server.request_timeout)',
  ],
  HPE_HEADER_OVERFLOW: [
    431,
    'Request Header Fields Too Large',
    'headers_too_large',
    'the request head is larger than the server accepts',
  ],
}

/**
 * Answers what Node refuses before any route sees it (a timed-out or malformed request), on the
 * raw socket, with the same body shape as every other error; Fastify's own answer has another.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, reason, code, message] = CLIENT_ERRORS[err.code ?? ''] ?? [
    400,
    'Bad Request',
    'bad_request',
    'malformed HTTP request',
  ]
  const body = JSON.stringify({ error: code, message })
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    )
  }
  socket.destroy()
}

/**
 * The one place error bodies are made: `{"error": code, "message": text}`, plus an AppError's
 * details. Client errors keep their message; server errors are logged in full and answered with
 * a generic text.
 */
export default fp(
  async (app) => {
    app.setErrorHandler((err: FastifyError | AppError, request, reply) => {
      if (err instanceof AppError) {
        const body: Record<string, unknown> = { error: err.code, message: err.message }
        for (const [key, value] of Object.entries(err.details)) {
          if (!(key in body)) body[key] = value
        }
        return reply.code(err.status).headers(err.headers).send(body)
      }
      const status = err.statusCode ?? 500
      if (status >= 400 && status < 500) {
        const code = err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ? 'invalid_json' : undefined
        return reply
          .code(status)
          .send({ error: code ?? CODE_BY_STATUS[status] ?? 'bad_request', message: err.message })
      }
      if (isDatabaseUnavailable(err)) {
        request.log.warn({ err }, 'request failed: database unavailable')
        return reply.code(503).header('Retry-After', '5').send({
          error: 'database_unavailable',
          message: 'the database is unavailable; retry later',
        })
      }
      request.log.error({ err }, 'request failed')
      return reply.code(500).send({ error: 'internal', message: 'internal server error' })
    })
    app.setNotFoundHandler((request, reply) => {
      return reply.code(404).send({
        error: 'not_found',
        message: `no route for ${request.method} ${request.url.split('?')[0]}`,
      })
    })
  },
  { name: 'errorHandler' },
)
