import { AppError } from '../domain/errors.js'

/**
 * What reading a multipart body threw, as the client's error where it was the client's: limits
 * (413) and the routes' own errors keep their status; what the multipart parser throws without
 * one (no boundary, a body cut short, a broken part header) is a malformed request.
 */
export function multipartError(err: unknown, code = 'bad_request'): unknown {
  if (err instanceof AppError || (err as { statusCode?: unknown }).statusCode) return err
  if (!(err instanceof Error) || !isParserError(err)) return err
  return new AppError(400, code, `malformed multipart body: ${err.message}`)
}

/** Errors busboy and @fastify/multipart raise about the body's shape, not our own failures. */
function isParserError(err: Error): boolean {
  return /multipart|boundary|unexpected end of (form|file)|malformed|part header/i.test(err.message)
}
