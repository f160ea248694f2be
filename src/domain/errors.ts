/**
 * The one error type for expected failures. The HTTP layer maps it to
 * `{"error": code, "message": message}` with `status`; nothing else formats error bodies.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'AppError'
  }
}

export const notFound = (what: string) => new AppError(404, 'not_found', `${what} not found`)
export const conflict = (message: string) => new AppError(409, 'conflict', message)
