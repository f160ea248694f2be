import { describe, expect, it } from 'vitest'
import { AppError } from '../../src/domain/errors.js'
import { checkImport, type ImportRow, SLICE_ROWS } from '../../src/domain/importRows.js'
import { csvLines } from '../../src/sheets/csv.js'
import { writeOds } from '../../src/sheets/ods.js'
import type { Cell } from '../../src/sheets/sheet.js'

/**
 * Checking an import file on plain values, as the sheet worker does: the header, every cell of
 * every row, and what is handed back to the thread that writes the rows.
 */

const HEADER = ['part_number', 'description', 'item_type']
const utf8 = (text: string) => new TextEncoder().encode(text)

async function rejection(promise: Promise<unknown>): Promise<AppError> {
  const err = await promise.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(AppError)
  return err as AppError
}

describe('checkImport', () => {
  it('hands the good rows over as JSON slices in file order, and the part numbers sorted', async () => {
    // Given a CSV of more rows than one slice holds, in reverse part-number order
    const count = SLICE_ROWS + 10
    const rows: Cell[][] = [[...HEADER, 'colour', 'mass']]
    for (let i = count; i-- > 0;)
      rows.push([`P-${String(i).padStart(5, '0')}`, `#${i}`, 'part', '', '1'])
    // When it is checked
    const checked = await checkImport('csv', utf8(csvLines(rows)))
    // Then the rows come in two slices, in file order, with the property cells only
    expect(checked.propertyNames).toEqual(['colour', 'mass'])
    expect(checked.rowCount).toBe(count)
    const slices = checked.rowSlices.map((s) => JSON.parse(s) as ImportRow[])
    expect(slices.map((s) => s.length)).toEqual([SLICE_ROWS, 10])
    expect(slices[0]?.[0]).toEqual({
      row: 2,
      part_number: `P-${String(count - 1).padStart(5, '0')}`,
      description: `#${count - 1}`,
      item_type: 'part',
      properties: ['', '1'],
    })
    // And the part numbers (the order rows are locked in) sorted, in slices as well
    const sorted = checked.partNumberSlices.flatMap((s) => JSON.parse(s) as string[])
    expect(sorted).toEqual(
      rows
        .slice(1)
        .map((r) => r[0])
        .sort(),
    )
  })

  it('reads ODS cells typed, and gives every row its property cells', async () => {
    const checked = await checkImport(
      'ods',
      writeOds(
        [...HEADER, 'n'],
        [
          ['O-1', 'x', 'part', 2.5],
          ['O-2', '', 'drawing'],
        ],
      ),
    )
    expect(checked.rowSlices.flatMap((s) => JSON.parse(s) as ImportRow[])).toEqual([
      { row: 2, part_number: 'O-1', description: 'x', item_type: 'part', properties: [2.5] },
      { row: 3, part_number: 'O-2', description: '', item_type: 'drawing', properties: [null] },
    ])
  })

  it('lists the first 1000 bad cells of a file of bad rows, counting them all', async () => {
    const rows: Cell[][] = [HEADER]
    for (let i = 0; i < 3000; i++) rows.push([`B-${i}`, '', 'gadget'])
    const err = await rejection(checkImport('csv', utf8(csvLines(rows))))
    expect(err.status).toBe(400)
    expect(err.message).toBe(
      '3000 bad rows; nothing was imported (the first 1000 of 3000 errors are listed)',
    )
    expect(err.details.errors).toHaveLength(1000)
  })

  it('refuses a file whose header lacks the item columns, before any row', async () => {
    const err = await rejection(checkImport('csv', utf8('part_number,notes\nP-1,"never closed')))
    expect(err.message).toMatch(
      /^the header row is invalid: description: required column is missing/,
    )
  })

  it('turns a reader limit into a 400 invalid_import naming it', async () => {
    const err = await rejection(
      checkImport('csv', utf8(`${HEADER.join(',')}\n${'\n'.repeat(200_000)}`)),
    )
    expect({ status: err.status, code: err.code, message: err.message }).toEqual({
      status: 400,
      code: 'invalid_import',
      message: 'the sheet has more than 100000 data rows',
    })
  })
})
