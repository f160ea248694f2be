import type { TSchema } from 'typebox'
import { closest } from 'fastest-levenshtein'

/**
 * Configuration mistakes in plain words: each names the key (and the SILO_* variable it came
 * from), says what is allowed, and for a misspelt key the closest real one. The validator's own
 * messages ("must match a schema in anyOf") say none of that.
 */

export type ConfigSchemaNode = TSchema & {
  type?: string
  properties?: Record<string, ConfigSchemaNode>
  required?: string[]
  anyOf?: ConfigSchemaNode[]
  const?: unknown
  minimum?: number
  maximum?: number
  minLength?: number
  duration?: boolean
  /** A memory size in PostgreSQL's units (SIZE_PATTERN). */
  size?: boolean
}

/** A duration in text: a whole number and its unit. */
export const DURATION_PATTERN = /^([0-9]+)(ms|s|m|h|d)$/

/** A memory size as PostgreSQL writes it: a whole number and kB, MB or GB. */
export const SIZE_PATTERN = /^[1-9][0-9]*(kB|MB|GB)$/

function shown(value: unknown): string {
  return JSON.stringify(value) ?? String(value)
}

function range(schema: ConfigSchemaNode): string {
  const { minimum: min, maximum: max } = schema
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}`
  if (min !== undefined) return ` of at least ${min}`
  return ''
}

function leafProblem(schema: ConfigSchemaNode, value: unknown): string | null {
  if (schema.duration) {
    const ok =
      (typeof value === 'number' && Number.isInteger(value) && value >= 0) ||
      (typeof value === 'string' && DURATION_PATTERN.test(value))
    return ok
      ? null
      : 'must be a duration: a whole number of milliseconds, or a number and a unit (ms, s, m, h, d) such as "500ms", "30s", "5m"'
  }
  if (schema.size) {
    return typeof value === 'string' && SIZE_PATTERN.test(value)
      ? null
      : 'must be a size: a whole number and a unit (kB, MB, GB) such as "16MB"'
  }
  if (schema.anyOf?.every((option) => 'const' in option)) {
    const allowed = schema.anyOf.map((option) => option.const)
    return allowed.includes(value) ? null : `must be one of ${allowed.join(', ')}`
  }
  switch (schema.type) {
    case 'integer':
      if (
        typeof value !== 'number' ||
        !Number.isInteger(value) ||
        (schema.minimum !== undefined && value < schema.minimum) ||
        (schema.maximum !== undefined && value > schema.maximum)
      ) {
        return `must be a whole number${range(schema)}`
      }
      return null
    case 'boolean':
      return typeof value === 'boolean' ? null : 'must be true or false'
    case 'string':
      if (typeof value !== 'string') return 'must be text'
      if (schema.minLength !== undefined && value.length < schema.minLength) {
        return `must be at least ${schema.minLength} characters long`
      }
      return null
    case 'array':
      return Array.isArray(value) && value.every((v) => typeof v === 'string')
        ? null
        : 'must be a list of text values (comma-separated in a SILO_* variable)'
    default:
      return null
  }
}

/**
 * Every problem with `value` against the config schema, one line each; empty when it fits.
 * `fromEnv` maps a key path (`server.port`) to the variable that set it.
 */
export function configProblems(
  schema: ConfigSchemaNode,
  value: unknown,
  fromEnv: ReadonlyMap<string, string>,
  path: string[] = [],
): string[] {
  const key = path.join('.')
  const variable = fromEnv.get(key)
  const named = variable ? `${key} (${variable})` : key
  if (schema.type !== 'object' || !schema.properties) {
    const problem = leafProblem(schema, value)
    return problem ? [`${named} ${problem}; got ${shown(value)}`] : []
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [`${key || 'the configuration'} must be a section of settings; got ${shown(value)}`]
  }
  const properties = schema.properties
  const known = Object.keys(properties)
  const problems: string[] = []
  for (const [name, child] of Object.entries(value)) {
    const childSchema = properties[name]
    if (childSchema) {
      if (child !== undefined) {
        problems.push(...configProblems(childSchema, child, fromEnv, [...path, name]))
      }
      continue
    }
    const where = [...path, name].join('.')
    problems.push(
      `${where} is not a setting; did you mean ${[...path, closest(name, known)].join('.')}?`,
    )
  }
  for (const name of schema.required ?? []) {
    if ((value as Record<string, unknown>)[name] === undefined) {
      problems.push(`${[...path, name].join('.')} is required`)
    }
  }
  return problems
}

/** SILO_* variables that name no setting, each with the closest real name. */
export function unknownVariables(
  env: NodeJS.ProcessEnv,
  known: ReadonlySet<string>,
): { name: string; closest: string }[] {
  return Object.keys(env)
    .filter((name) => name.startsWith('SILO_') && !known.has(name))
    .sort()
    .map((name) => ({ name, closest: closest(name, [...known]) }))
}
