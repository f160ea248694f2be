import { STATUS_CODES } from 'node:http'

/**
 * Pieces of OpenAPI that several operations share: the error body, `Retry-After`, and plain
 * JSON Schema objects, which @fastify/swagger turns into responses and parameters as it does a
 * route's own schemas.
 */

export type JsonSchema = Record<string, unknown>

/** A response as @fastify/swagger reads it from a route schema: a body schema plus extras. */
export type ResponseSchema = JsonSchema & {
  description?: string
  [RESPONSE_DESCRIPTION]?: string
  headers?: JsonSchema
}

/** @fastify/swagger's key for a response's description that is not the body schema's own. */
const RESPONSE_DESCRIPTION = 'x-response-description'

export const retryAfterHeader = {
  type: 'integer',
  minimum: 1,
  description: 'Seconds to wait before trying again.',
}

/** Every refusal is `{"error": "<code>", "message": "..."}` (README, "Bad input"). */
export function errorBody(description: string, codes: readonly string[] = []): ResponseSchema {
  return {
    type: 'object',
    required: ['error', 'message'],
    properties: {
      error: { type: 'string', ...(codes.length > 0 ? { examples: [...codes] } : {}) },
      message: { type: 'string' },
    },
    [RESPONSE_DESCRIPTION]: description,
  }
}

/** A response schema with a description, the status text where the route gave none. */
export function described(status: string, schema: unknown): ResponseSchema {
  const response = (schema && typeof schema === 'object' ? schema : {}) as ResponseSchema
  if (response.description || response[RESPONSE_DESCRIPTION]) return response
  return { ...response, [RESPONSE_DESCRIPTION]: STATUS_CODES[Number(status)] ?? `HTTP ${status}` }
}

/** Adds response headers to a response, keeping those it has. */
export function withHeaders(response: ResponseSchema, headers: JsonSchema): ResponseSchema {
  return { ...response, headers: { ...response.headers, ...headers } }
}
