import { Type } from 'typebox'
import type { IfMatch } from '../domain/items.js'
import { PreconditionFailed } from '../domain/schemas.js'

/** `*`, or a comma-separated list of entity tags, weak (`W/"…"`) or strong (RFC 9110). */
const ENTITY_TAGS = '^\\s*(\\*|(W/)?"[^"]*"(\\s*,\\s*(W/)?"[^"]*")*)\\s*$'

/**
 * The headers of a write that takes If-Match, and the answer to a stale one: the item's
 * version is its ETag (`"3"`), and a write with If-Match applies only to the versions it names.
 */
export const ifMatchSchema = {
  headers: Type.Object({
    'if-match': Type.Optional(
      Type.String({
        pattern: ENTITY_TAGS,
        description: 'the ETag of the item version the change is meant for, e.g. "3"',
      }),
    ),
  }),
  response: { 412: PreconditionFailed },
}

/**
 * The versions an If-Match header accepts. Strong comparison, as RFC 9110 wants for If-Match:
 * a weak tag never matches, nor does a tag that is no version; `*` (or no header) accepts any.
 */
export function ifMatchVersions(header: string | undefined): IfMatch {
  if (header === undefined || header.trim() === '*') return undefined
  return [...header.matchAll(/(W\/)?"([^"]*)"/g)]
    .filter((tag) => !tag[1] && /^[1-9][0-9]{0,9}$/.test(tag[2] ?? ''))
    .map((tag) => Number(tag[2]))
}
