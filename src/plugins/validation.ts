import { Ajv, type ErrorObject, type Options } from 'ajv'
import addFormats from 'ajv-formats'
import fp from 'fastify-plugin'
import { findValueProblem } from '../domain/jsonValues.js'
import { PROPERTY_NAME_RULE } from '../domain/properties.js'

function makeAjv(options: Options): Ajv {
  const ajv = new Ajv({
    allErrors: false,
    useDefaults: true,
    // Unknown fields are an error, never silently dropped (README, "Bad input").
    removeAdditional: false,
    ...options,
  })
  addFormats.default(ajv)
  return ajv
}

/**
 * A schema failure in words that name the field and what it may be: the validator's own say
 * "must NOT have additional properties" without the property, "must match a schema in anyOf"
 * for a field that takes one of a few values, and nothing useful about a bad property name
 * (the one schema with a rule on names is an item's properties).
 */
export function validationMessage(errors: readonly ErrorObject[], part: string): string {
  const anyOf = errors.find((e) => e.keyword === 'anyOf')
  if (anyOf) {
    const allowed = errors
      .filter((e) => e.keyword === 'const' && e.instancePath === anyOf.instancePath)
      .map((e) => JSON.stringify((e.params as { allowedValue: unknown }).allowedValue))
    if (allowed.length > 0)
      return `${part}${anyOf.instancePath} must be one of ${allowed.join(', ')}`
  }
  const names = errors.find((e) => e.keyword === 'propertyNames')
  if (names) {
    const name = String((names.params as { propertyName: unknown }).propertyName)
    const shown = JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name)
    return `${part}${names.instancePath} has the property name ${shown}; names are ${PROPERTY_NAME_RULE}`
  }
  const first = errors[0]
  if (!first) return `${part} is invalid`
  if (first.keyword === 'additionalProperties') {
    const field = (first.params as { additionalProperty: string }).additionalProperty
    return `${part}${first.instancePath} has an unknown field "${field}"`
  }
  return `${part}${first.instancePath} ${first.message ?? 'is invalid'}`
}

/**
 * Bodies are validated strictly (a string is never coerced into a number); query strings,
 * params and headers arrive as text, so they are coerced to the declared types. Whatever passes
 * its schema is then held to the rules every value follows (no NUL, finite numbers, bounded
 * nesting), after coercion, which is what turns `?limit=Infinity` into a number.
 */
export default fp(
  async (app) => {
    const strict = makeAjv({ coerceTypes: false })
    const coercing = makeAjv({ coerceTypes: 'array' })
    app.setValidatorCompiler(({ schema, httpPart }) => {
      const validate = (httpPart === 'body' ? strict : coercing).compile(schema)
      // Fastify reads a failed check's errors off the function, as from an Ajv validator.
      const check = Object.assign(
        (data: unknown) => {
          check.errors = null
          if (!validate(data)) {
            check.errors = validate.errors ?? null
            return false
          }
          const found = findValueProblem(data)
          if (!found) return true
          const part = httpPart === 'querystring' ? 'query' : (httpPart ?? 'body')
          return { error: new Error(`${part}${found.path} ${found.problem}`) }
        },
        { errors: null as ErrorObject[] | null },
      )
      return check
    })
    app.setSchemaErrorFormatter((errors, dataVar) =>
      Object.assign(new Error(validationMessage(errors as ErrorObject[], dataVar)), {
        statusCode: 400,
      }),
    )
  },
  { name: 'validation' },
)
