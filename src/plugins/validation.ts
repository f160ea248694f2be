import { Ajv, type Options } from 'ajv'
import addFormats from 'ajv-formats'
import fp from 'fastify-plugin'

function makeAjv(options: Options): Ajv {
  const ajv = new Ajv({
    allErrors: false,
    useDefaults: true,
    // Unknown fields are an error, never silently dropped (DESIGN §7).
    removeAdditional: false,
    ...options,
  })
  addFormats.default(ajv)
  return ajv
}

/**
 * Bodies are validated strictly (a string is never coerced into a number); query strings,
 * params and headers arrive as text, so they are coerced to the declared types.
 */
export default fp(
  async (app) => {
    const strict = makeAjv({ coerceTypes: false })
    const coercing = makeAjv({ coerceTypes: 'array' })
    app.setValidatorCompiler(({ schema, httpPart }) =>
      (httpPart === 'body' ? strict : coercing).compile(schema),
    )
  },
  { name: 'validation' },
)
