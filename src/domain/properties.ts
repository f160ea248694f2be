/**
 * What an item's properties may be, on every route that writes them (the JSON API and the
 * sheet imports alike), so that an export is always a full copy that imports back unchanged:
 * each property becomes a sheet column named after it.
 */

import { DEFAULT_SHEET_LIMITS } from '../sheets/sheet.js'

export const MAX_PROPERTIES = 256
export const MAX_PROPERTY_NAME_LENGTH = 128

/** A value is a cell of its own in an export, so it is held to the import's cell limit. */
export const MAX_PROPERTY_VALUE_LENGTH = DEFAULT_SHEET_LIMITS.maxCellLength

/** A sheet's fixed columns; a property of such a name could not have a column of its own. */
export const FIXED_COLUMNS = ['part_number', 'description', 'item_type'] as const

/** No white space at either end: sheet readers trim column names. */
export const PROPERTY_NAME_PATTERN = '^\\S(?:[\\s\\S]*\\S)?$'

export const PROPERTY_NAME_RULE =
  `1 to ${MAX_PROPERTY_NAME_LENGTH} characters, no white space at either end, ` +
  `not ${FIXED_COLUMNS.join(', ')}`

const NAME = new RegExp(PROPERTY_NAME_PATTERN)

/**
 * The first property whose value is longer than a sheet cell can hold, as the export writes it
 * (strings as they are, other values as JSON text), with the reason; or null.
 */
export function propertyValueProblem(
  properties: Record<string, unknown>,
): { name: string; problem: string } | null {
  for (const [name, value] of Object.entries(properties)) {
    const text = typeof value === 'string' ? value : JSON.stringify(value)
    if (text.length > MAX_PROPERTY_VALUE_LENGTH) {
      const as = typeof value === 'string' ? '' : ' as JSON text'
      return {
        name,
        problem: `is longer than ${MAX_PROPERTY_VALUE_LENGTH} characters${as}, the most a sheet cell holds`,
      }
    }
  }
  return null
}

/** Why `name` cannot be a property name, or null if it can. */
export function propertyNameProblem(name: string): string | null {
  if ([...name].length > MAX_PROPERTY_NAME_LENGTH) {
    return `property names are at most ${MAX_PROPERTY_NAME_LENGTH} characters`
  }
  if (!NAME.test(name)) return 'property names have no white space at either end'
  if ((FIXED_COLUMNS as readonly string[]).includes(name)) {
    return `"${name}" is a fixed column, not a property name`
  }
  return null
}
