import { ApiError } from './api.ts'

/**
 * Which of a form's fields an API refusal is about: the API's messages name the field (the
 * README's "Bad input"), so the console shows each message next to the field it names.
 */
export function fieldOf(err: unknown, fields: readonly string[]): string | null {
  if (!(err instanceof ApiError)) return null
  const message = err.message
  return fields.find((f) => new RegExp(`\\b${f}\\b`).test(message)) ?? null
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
