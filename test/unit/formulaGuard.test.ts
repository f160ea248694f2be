import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { guardFormula, unguardFormula } from '../../src/sheets/formulaGuard.js'

describe('the CSV formula guard', () => {
  it.each(['=1+2', '+A1', '-A1', '@SUM(A1)', '\tx', '\rx', "'=x", "''+x"])(
    'writes %j so that no spreadsheet runs it: one more leading quote',
    (text) => {
      expect(guardFormula(text)).toBe(`'${text}`)
    },
  )

  it.each(['plain', "'quoted", "'5", '-5', '+1.5e3', '-.5', '', ' =x'])(
    'leaves %j as it is',
    (text) => {
      expect(guardFormula(text)).toBe(text)
      expect(unguardFormula(text)).toBe(text)
    },
  )

  it('reads back exactly what it wrote, for any text', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.stringMatching(/^'*[=+\-@\t\r'].*$/)),
        (text) => unguardFormula(guardFormula(text)) === text,
      ),
      { seed: 20261201, numRuns: 2000 },
    )
  })
})
