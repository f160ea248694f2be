import { join } from 'node:path'
import { type ParseArgsConfig, parseArgs } from 'node:util'
import { ROOT } from './server.js'

type Options = NonNullable<ParseArgsConfig['options']>

/** What every harness takes besides its own options: where the report goes, and --help. */
const COMMON = {
  report: { type: 'string', default: join(ROOT, 'docs', 'BENCHMARKS.md') },
  'no-report': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const

/** Option values as parseArgs gives them: options with a default are always set. */
type Values<O extends Options> = {
  [K in keyof O]: O[K] extends { type: 'boolean' }
    ? boolean
    : O[K] extends { default: string }
      ? string
      : string | undefined
}

/** Parses the command line; prints `usage` and exits on --help. */
export function benchArgs<O extends Options>(usage: string, options: O): Values<O & typeof COMMON> {
  // parseArgs cannot type values for options it only knows as a type parameter.
  const values = parseArgs({ options: { ...options, ...COMMON } }).values as unknown as Values<
    O & typeof COMMON
  >
  if (values.help) {
    process.stdout.write(`${usage}\n`)
    process.exit(0)
  }
  return values
}

/**
 * A numeric option: `positive` (> 0), `non-negative` (>= 0) or `integer` (a whole number > 0).
 * Anything else ends the run with a message naming the option.
 */
export function numberArg(
  values: Record<string, unknown>,
  name: string,
  rule: 'positive' | 'non-negative' | 'integer' = 'positive',
): number {
  const value = Number(values[name])
  const ok =
    rule === 'integer'
      ? Number.isInteger(value) && value > 0
      : Number.isFinite(value) && (rule === 'non-negative' ? value >= 0 : value > 0)
  if (!ok) {
    const what = rule === 'integer' ? 'a positive integer' : `a ${rule} number`
    process.stderr.write(`--${name} must be ${what}\n`)
    process.exit(2)
  }
  return value
}
