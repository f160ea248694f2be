/**
 * What any value a client sends must be, beyond its schema (README, "Bad input"): text holds no
 * U+0000 (PostgreSQL text and jsonb cannot store it), numbers are finite (JSON's 1e309 parses to
 * Infinity, which jsonb would store as null), and nesting stays shallow (deep values cost
 * stack and time in every later reader). Keys are text too.
 */

/** What is wrong with text that holds U+0000, wherever it came from (JSON, a sheet cell). */
export const NUL_PROBLEM = 'must not contain U+0000 (NUL)'

/** Deepest nesting of objects and arrays in a request body or a property value. */
export const MAX_JSON_DEPTH = 32

export interface ValueProblem {
  /** Where, as a JSON pointer from the part checked (`/properties/a/0`). */
  path: string
  problem: string
}

function pointer(path: readonly (string | number)[]): string {
  return path.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('')
}

/** The first problem in `value`, or null. Stops descending at MAX_JSON_DEPTH. */
export function findValueProblem(value: unknown): ValueProblem | null {
  const path: (string | number)[] = []
  const visit = (v: unknown, depth: number): string | null => {
    if (typeof v === 'string') return v.includes('\u0000') ? NUL_PROBLEM : null
    if (typeof v === 'number') return Number.isFinite(v) ? null : 'must be a finite number'
    if (v === null || typeof v !== 'object') return null
    if (depth >= MAX_JSON_DEPTH) return `nests deeper than ${MAX_JSON_DEPTH} levels`
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i)
        const problem = visit(v[i], depth + 1)
        if (problem) return problem
        path.pop()
      }
      return null
    }
    for (const [key, child] of Object.entries(v)) {
      path.push(key)
      if (key.includes('\u0000')) return 'is a name that contains U+0000 (NUL)'
      const problem = visit(child, depth + 1)
      if (problem) return problem
      path.pop()
    }
    return null
  }
  const problem = visit(value, 0)
  return problem ? { path: pointer(path), problem } : null
}
