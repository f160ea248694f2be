import { Type } from 'typebox'
import { ErrorBody, PartNumber } from '../domain/schemas.js'

/**
 * What routes share beyond the domain's entities (src/domain/schemas.ts): path parameters and
 * the refusals many routes give.
 */

export { ErrorBody, Item, ItemType, Mode, PartNumber, Role, ServerMode } from '../domain/schemas.js'

export const PartNumberParams = Type.Object({ pn: PartNumber })

/**
 * Refusals every authenticated route can give: no or bad token (401), too low a role (403),
 * and 503 while the server shuts down (and, for writes, while it is read-only).
 */
export const authErrors = { 401: ErrorBody, 403: ErrorBody, 503: ErrorBody }

/** Refusals of a route that reads a body: bad (400), too large (413), of a type it cannot read (415). */
export const bodyErrors = { 400: ErrorBody, 413: ErrorBody, 415: ErrorBody }
