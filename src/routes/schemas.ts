import { Type } from 'typebox'
import {
  ErrorBody,
  Item,
  ItemType,
  Mode,
  PartNumber,
  Properties,
  Role,
  ServerMode,
} from '../domain/schemas.js'

/** What routes share beyond the domain's entities: path parameters and the auth refusals. */

export { ErrorBody, Item, ItemType, Mode, PartNumber, Properties, Role, ServerMode }

export const PartNumberParams = Type.Object({ pn: PartNumber })

/** Error responses every authenticated route can give. */
export const authErrors = { 401: ErrorBody, 403: ErrorBody }
