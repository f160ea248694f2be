/**
 * The one error type for expected failures. The HTTP layer maps it to
 * `{"error": code, "message": message, ...details}` with `status`; nothing else formats error
 * bodies. `details` carries machine-readable extras (a BOM cycle's path, an import's bad rows);
 * it can never replace `error` or `message`. A route whose errors carry details must declare
 * them in its response schema, or serialisation drops them.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly details: Record<string, unknown> = {},
  ) {
    super(message)
    this.name = 'AppError'
  }
}

export const notFound = (what: string) => new AppError(404, 'not_found', `${what} not found`)
export const conflict = (message: string) => new AppError(409, 'conflict', message)
