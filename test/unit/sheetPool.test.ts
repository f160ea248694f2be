import { afterEach, describe, expect, it } from 'vitest'
import { AppError } from '../../src/domain/errors.js'
import { SheetPool } from '../../src/workers/sheetPool.js'

/** The sheet worker pool with real worker threads (running the TypeScript worker through tsx). */

let pool: SheetPool | undefined

afterEach(async () => {
  await pool?.close()
  pool = undefined
})

const file = (rows: number) => {
  const lines = ['part_number,description,item_type']
  for (let i = 0; i < rows; i++) lines.push(`P-${i},x,part`)
  return new TextEncoder().encode(`${lines.join('\n')}\n`)
}

describe('SheetPool', () => {
  it('checks an import in a worker thread and hands the buffer over without a copy', async () => {
    pool = new SheetPool()
    const bytes = file(3)
    const checked = await pool.checkImport('csv', bytes, new AbortController().signal)
    expect(checked.rowCount).toBe(3)
    // The buffer was moved to the worker, not copied: it is detached here
    expect(bytes.byteLength).toBe(0)
  })

  it('refuses imports with 503 server_busy and Retry-After once 16 tasks wait, and runs the others', async () => {
    // Given more imports at once than the threads and the queue hold
    pool = new SheetPool()
    const signal = new AbortController().signal
    const outcomes = await Promise.allSettled(
      Array.from({ length: 24 }, () => pool!.checkImport('csv', file(10), signal)),
    )
    // Then the ones past the queue are refused at once, and the others are read
    const refused = outcomes.filter((o) => o.status === 'rejected')
    expect(refused.length).toBeGreaterThan(0)
    for (const o of refused) {
      const err = (o as PromiseRejectedResult).reason as AppError
      expect(err).toBeInstanceOf(AppError)
      expect({ status: err.status, code: err.code, headers: err.headers }).toEqual({
        status: 503,
        code: 'server_busy',
        headers: { 'retry-after': '5' },
      })
    }
    const read = outcomes.filter((o) => o.status === 'fulfilled')
    expect(read.length).toBeGreaterThanOrEqual(16)
  })

  it('stops a task when its signal aborts, throwing the reason, and goes on with the next', async () => {
    pool = new SheetPool()
    const stop = new AbortController()
    const reading = pool.checkImport('csv', file(200_000), stop.signal)
    const reason = new AppError(422, 'import_timeout', 'too slow')
    stop.abort(reason)
    await expect(reading).rejects.toBe(reason)
    const next = await pool.checkImport('csv', file(2), new AbortController().signal)
    expect(next.rowCount).toBe(2)
  })
})
